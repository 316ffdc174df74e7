// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace claudegate::config {

// What a request whose max_tokens is above the plan's cap, or above what is
// left of today's quota, gets: the forwarded max_tokens lowered, or a refusal.
enum class OverCap { clamp, reject };

struct Plan {
  std::string name;
  std::optional<std::int64_t> daily_token_limit; // nullopt = unlimited
  std::vector<std::string> models;               // glob patterns
  std::optional<std::int64_t> max_tokens;
  std::optional<std::int64_t> rpm;
  std::optional<std::int64_t> max_concurrent;
  OverCap over_cap = OverCap::clamp;
  // Reserved for a request whose input the body cannot bound (a document by
  // URL, web_fetch, …); nullopt = all that is left of today's quota.
  std::optional<std::int64_t> unbounded_input_reserve;
};

// serve-local's defaults, their one home: ServeConfig below and
// proxy::ServeOptions both start from them.
namespace serve_defaults {
inline constexpr std::string_view host = "127.0.0.1";
inline constexpr int port = 8787;
inline constexpr std::string_view upstream = "https://api.anthropic.com";
inline constexpr std::int64_t body_limit = 32 * 1024 * 1024;
inline constexpr std::int64_t read_timeout = 30;           // seconds, client side
inline constexpr std::int64_t upstream_timeout = 600;      // seconds between upstream bytes
inline constexpr std::int64_t threads = 0;                 // 0 = automatic
inline constexpr std::int64_t max_output_tokens = 128'000; // the largest max_tokens any model accepts
inline constexpr std::string_view jwks_plan = "free";
} // namespace serve_defaults

// serve-local's brute-force protection ([serve.lockout]): the failures in a
// sliding minute that lock an IP out, or put an API key id under attack, and
// the lockouts' durations in seconds.
struct LockoutConfig {
  std::int64_t failures_per_minute = 10;
  std::int64_t key_failures_per_minute = 10;
  std::int64_t first = 15 * 60;
  std::int64_t repeat = 60 * 60;
  std::int64_t memory = 24 * 60 * 60; // how long after a lockout ends its IP stays a repeat offender
};

struct ServeConfig {
  std::string listen = std::string(serve_defaults::host) + ":" + std::to_string(serve_defaults::port);
  std::string upstream{serve_defaults::upstream};
  std::int64_t body_limit = serve_defaults::body_limit;
  std::int64_t read_timeout = serve_defaults::read_timeout;
  std::int64_t upstream_timeout = serve_defaults::upstream_timeout;
  std::int64_t threads = serve_defaults::threads;
  std::int64_t max_output_tokens = serve_defaults::max_output_tokens;
  std::string jwks;        // external IdP's JWKS URL (serve-local --jwks); empty = none
  std::string jwks_issuer; // its tokens' iss (--jwks-iss)
  std::string jwks_plan{serve_defaults::jwks_plan}; // plan of its tokens without a "plan" claim (--jwks-plan)
  LockoutConfig lockout;
};

// [access]: the roles (a token's "roles" claim) that may reach each of
// serve-local's guarded routes; one of them is enough.
struct AccessConfig {
  std::vector<std::string> admin_usage{"admin"};  // GET /admin/usage
  std::vector<std::string> admin_revoke{"admin"}; // POST /admin/revoke
  std::vector<std::string> admin_keys{"admin"};   // GET /admin/keys
  std::vector<std::string> metrics{"admin"};      // GET /metrics, only with --allow-remote
};

struct Config {
  std::string issuer = "claudegate";
  std::string audience = "claude-proxy";
  std::int64_t access_ttl = 15 * 60;
  std::int64_t refresh_ttl = 7 * 86400;
  std::int64_t family_ttl = 30 * 86400;
  std::int64_t leeway = 60;
  std::int64_t max_access_ttl = 24 * 3600;
  // Where the store lives when --db/CLAUDEGATE_DB do not say: a file path,
  // "sqlite:PATH" or a postgresql:// URI; empty = HOME/claudegate.db.
  std::string store;
  ServeConfig serve;
  std::map<std::string, Plan> plans; // built-ins: free, pro, admin
  AccessConfig access;

  // The plan named `name`; fails with config listing the known plans.
  Result<const Plan*> plan(const std::string& name) const;
};

// The built-in configuration (DESIGN.md §7) used when no file exists.
Config defaults();

enum class Required { yes, no };

// The defaults overlaid with TOML file `path` (durations as "15m" strings
// or integer seconds; [plans.NAME] tables add or replace plans). A missing
// file gives the defaults when `required` is no. Fails with config naming
// the file, line and key, or when the file is owned by another user or
// writable by group/others (fs::check_private).
Result<Config> load(const std::filesystem::path& path, Required required);

// Parse TOML `text` (named `source` in messages) over the defaults.
Result<Config> parse(std::string_view text, std::string_view source);

// One key the parser accepts, as documented: `name` dotted ("access_ttl",
// "serve.listen", "plans.NAME.rpm"), its value `type` ("duration", "size",
// …), its `fallback` as it would be written in the file (the default; for
// plan keys, what a new plan gets) and a line of `doc`.
struct KeyDoc {
  std::string name;
  std::string_view type;
  std::string fallback;
  std::string_view doc;
};

// Every key of claudegate.toml in the parser's order, read from the same
// tables that drive parsing and "did you mean".
std::vector<KeyDoc> key_docs();

} // namespace claudegate::config
