// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/config.hpp"

#include "config_fields.hpp"

#include "claudegate/base/duration.hpp"
#include "claudegate/base/fs.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include <algorithm>
#include <string_view>
#include <system_error>

namespace claudegate::config {

namespace {

using namespace fields;

constexpr std::size_t k_max_file_bytes = 1024 * 1024;
constexpr std::int64_t k_max_threads = 1024;

constexpr std::int64_t k_max_output_tokens_ceiling = 10'000'000;

const std::vector<std::string> k_haiku_models{"claude-3-5-haiku*", "claude-haiku*", "claude-3-haiku*"};

Plan free_plan() {
  return Plan{"free", 50'000, k_haiku_models, 4096, 20, 2, OverCap::clamp, std::nullopt};
}

Plan pro_plan() {
  std::vector<std::string> models = k_haiku_models;
  models.emplace_back("claude-*sonnet*");
  return Plan{"pro", 500'000, std::move(models), 64'000, 120, 8, OverCap::clamp, std::nullopt};
}

Plan admin_plan() {
  return Plan{"admin",      std::nullopt, {"*"},          std::nullopt,
              std::nullopt, std::nullopt, OverCap::clamp, std::nullopt};
}

// Enough for any real client; more would let one IP's window hold that many timestamps.
constexpr std::int64_t k_max_failures_per_minute = 1000;

const std::vector<Entry<LockoutConfig>>& lockout_entries() {
  static const std::vector<Entry<LockoutConfig>> k_entries{
      entry("failures_per_minute", &LockoutConfig::failures_per_minute, Integer{1, k_max_failures_per_minute},
            "failed authentications from one IP in a minute that lock it out"),
      entry("key_failures_per_minute", &LockoutConfig::key_failures_per_minute,
            Integer{1, k_max_failures_per_minute},
            "failures on one API key id in a minute that put it under attack"),
      entry("first", &LockoutConfig::first, Duration{1}, "a first lockout"),
      entry("repeat", &LockoutConfig::repeat, Duration{1}, "the lockout of a repeat offender"),
      entry("memory", &LockoutConfig::memory, Duration{0},
            "how long after a lockout ends its IP stays a repeat offender"),
  };
  return k_entries;
}

// A sub-table (`name`, dotted) read by `entries` over the defaults of T:
// [serve.lockout] over the default brute-force protection, [serve] over
// serve-local's defaults, [access] over role admin for each route.
template <typename T> struct SubTable {
  static constexpr std::string_view type = "table";
  std::string_view name;
  const std::vector<Entry<T>>& (*entries)();

  Result<T> read(const Context& ctx, const Field& field) const {
    const auto table = table_of(ctx, field);
    return table ? apply_table(ctx, **table, name, entries(), T{}) : propagate(table);
  }
  std::string show(const T& /*value*/) const { return {}; } // its keys document themselves
};

const std::vector<Entry<ServeConfig>>& serve_entries() {
  static const std::vector<Entry<ServeConfig>> k_entries{
      entry("listen", &ServeConfig::listen, Text{}, "HOST:PORT to listen on (--listen)"),
      entry("upstream", &ServeConfig::upstream, Url{}, "Claude API base URL (--upstream)"),
      entry("body_limit", &ServeConfig::body_limit, Size{}, "largest request body (--body-limit)"),
      entry("read_timeout", &ServeConfig::read_timeout, Duration{1}, "client side: each read, a whole head"),
      entry("upstream_timeout", &ServeConfig::upstream_timeout, Duration{1}, "between upstream bytes"),
      entry("threads", &ServeConfig::threads, Integer{0, k_max_threads}, "io threads, 0 = one per core"),
      entry("jwks", &ServeConfig::jwks, Url{}, "an external IdP's JWKS URL (--jwks)"),
      entry("jwks_issuer", &ServeConfig::jwks_issuer, Text{}, "the iss of that IdP's tokens (--jwks-iss)"),
      entry("jwks_plan", &ServeConfig::jwks_plan, Text{}, "plan of that IdP's tokens (--jwks-plan)"),
      entry("max_output_tokens", &ServeConfig::max_output_tokens, Integer{1, k_max_output_tokens_ceiling},
            "the largest max_tokens any model produces"),
      entry("lockout", &ServeConfig::lockout, SubTable<LockoutConfig>{"serve.lockout", lockout_entries},
            "brute-force protection ([serve.lockout])"),
  };
  return k_entries;
}

const std::vector<Entry<Plan>>& plan_entries() {
  static const std::vector<Entry<Plan>> k_entries{
      entry("daily_token_limit", &Plan::daily_token_limit, Limit{0}, "tokens per UTC day"),
      entry("models", &Plan::models, Globs{}, "model globs the plan allows (required)"),
      entry("max_tokens", &Plan::max_tokens, Limit{1}, "largest max_tokens a request may ask for"),
      entry("rpm", &Plan::rpm, Limit{1}, "requests per minute"),
      entry("max_concurrent", &Plan::max_concurrent, Limit{1}, "requests in flight at once"),
      entry("over_cap", &Plan::over_cap, CapPolicy{}, "a max_tokens above the cap: lowered or refused"),
      entry("unbounded_input_reserve", &Plan::unbounded_input_reserve, Limit{1},
            "tokens reserved for input the body cannot bound"),
  };
  return k_entries;
}

bool valid_plan_name(std::string_view name) {
  return !name.empty()
         && name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
                == std::string_view::npos;
}

// What a [plans.NAME] table not naming a built-in plan starts from.
Plan new_plan(std::string_view name) {
  return Plan{std::string(name), {}, {}, {}, {}, {}, OverCap::clamp, {}};
}

std::map<std::string, Plan> builtin_plans() {
  std::map<std::string, Plan> plans;
  for (Plan plan : {free_plan(), pro_plan(), admin_plan()}) {
    plans.emplace(plan.name, plan);
  }
  return plans;
}

// One [plans.NAME] table over `plan` (a built-in one keeps the keys the table does not set).
Result<Plan> plan_table(const Context& ctx, const toml::key& key, const toml::node& node, Plan plan) {
  const std::string name(key.str());
  if (!valid_plan_name(name)) {
    return ctx.fail_at(key.source(),
                       fmt::format("plan name \"{}\" may only use letters, digits, '_' and '-'", name));
  }
  const auto table = table_of(ctx, Field{"plans." + name, node});
  auto applied =
      table ? apply_table(ctx, **table, "plans." + name, plan_entries(), std::move(plan)) : propagate(table);
  if (applied && applied->models.empty()) {
    return ctx.fail_at(
        key.source(),
        fmt::format("plan \"{}\" allows no models; add models = [\"claude-*haiku*\"] (globs)", name));
  }
  return applied;
}

// [plans]: its [plans.NAME] tables over the built-in plans.
struct PlanTables {
  static constexpr std::string_view type = "table";

  Result<std::map<std::string, Plan>> read(const Context& ctx, const Field& field) const {
    const auto table = table_of(ctx, field);
    if (!table) {
      return propagate(table);
    }
    auto plans = builtin_plans();
    for (auto&& [key, node] : **table) {
      const auto existing = plans.find(std::string(key.str()));
      auto plan =
          plan_table(ctx, key, node, existing != plans.end() ? existing->second : new_plan(key.str()));
      if (!plan) {
        return propagate(plan);
      }
      plans[plan->name] = std::move(*plan);
    }
    return plans;
  }
  std::string show(const std::map<std::string, Plan>& /*plans*/) const {
    return {};
  } // keys document themselves
};

const std::vector<Entry<AccessConfig>>& access_entries() {
  static const std::vector<Entry<AccessConfig>> k_entries{
      entry("/admin/usage", &AccessConfig::admin_usage, Roles{}, "roles that may read GET /admin/usage"),
      entry("/admin/revoke", &AccessConfig::admin_revoke, Roles{}, "roles that may POST /admin/revoke"),
      entry("/admin/keys", &AccessConfig::admin_keys, Roles{}, "roles that may list GET /admin/keys"),
      entry("/metrics", &AccessConfig::metrics, Roles{}, "roles that may read /metrics with --allow-remote"),
  };
  return k_entries;
}

const std::vector<Entry<Config>>& root_entries() {
  static const std::vector<Entry<Config>> k_entries{
      entry("issuer", &Config::issuer, Text{}, "the iss of issued tokens"),
      entry("audience", &Config::audience, Text{}, "the aud of issued tokens, required by verify"),
      entry("access_ttl", &Config::access_ttl, Duration{1}, "access token lifetime"),
      entry("refresh_ttl", &Config::refresh_ttl, Duration{1}, "refresh token lifetime"),
      entry("family_ttl", &Config::family_ttl, Duration{1}, "absolute lifetime of a refresh family"),
      entry("leeway", &Config::leeway, Duration{0}, "clock skew allowed"),
      entry("max_access_ttl", &Config::max_access_ttl, Duration{1}, "longest access token lifetime"),
      entry("store", &Config::store, Text{}, "the store: a file, sqlite:PATH or postgresql:// URI (--db)"),
      entry("serve", &Config::serve, SubTable<ServeConfig>{"serve", serve_entries}, "serve-local's settings"),
      entry("plans", &Config::plans, PlanTables{}, "[plans.NAME] tables add plans or change built-in ones"),
      entry("access", &Config::access, SubTable<AccessConfig>{"access", access_entries},
            "the roles serve-local's admin routes need"),
  };
  return k_entries;
}

// Settings that are each fine but together would make every plain `issue` fail.
Result<void> check_consistency(std::string_view source, const Config& cfg) {
  if (cfg.access_ttl > cfg.max_access_ttl) {
    return fail(Errc::config,
                fmt::format("{}: access_ttl ({}) is longer than max_access_ttl ({}); lower "
                            "access_ttl or raise max_access_ttl",
                            source, duration::format(cfg.access_ttl), duration::format(cfg.max_access_ttl)));
  }
  return {};
}

std::unexpected<Error> toml_error(std::string_view source, const toml::parse_error& error) {
  return fail(Errc::config,
              fmt::format("{}:{}:{}: invalid TOML ({}); fix the file", source, error.source().begin.line,
                          error.source().begin.column, error.description()));
}

// toml++ reports syntax errors by exception or by result, depending on how it was built.
Result<toml::table> parse_toml(std::string_view text, std::string_view source) {
#if TOML_EXCEPTIONS
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& error) {
    return toml_error(source, error);
  }
#else
  toml::parse_result parsed = toml::parse(text, source);
  if (!parsed) {
    return toml_error(source, parsed.error());
  }
  return std::move(parsed).table();
#endif
}

} // namespace

Result<const Plan*> Config::plan(const std::string& name) const {
  if (const auto found = plans.find(name); found != plans.end()) {
    return &found->second;
  }
  std::vector<std::string_view> names;
  for (const auto& entry : plans) {
    names.push_back(entry.first);
  }
  return fail(Errc::config, fmt::format("unknown plan \"{}\"; known plans: {} (define others as [plans.NAME] "
                                        "in claudegate.toml)",
                                        name, fmt::join(names, ", ")));
}

Config defaults() {
  Config cfg;
  cfg.plans = builtin_plans();
  return cfg;
}

Result<Config> parse(std::string_view text, std::string_view source) {
  auto root = parse_toml(text, source);
  if (!root) {
    return propagate(root);
  }
  auto cfg = apply_table(Context{source}, *root, "", root_entries(), defaults());
  if (!cfg) {
    return cfg;
  }
  if (auto consistent = check_consistency(source, *cfg); !consistent) {
    return propagate(consistent);
  }
  return cfg;
}

std::vector<KeyDoc> key_docs() {
  const Config cfg = defaults();
  std::vector<KeyDoc> docs;
  append_docs(docs, "", root_entries(), cfg);
  append_docs(docs, "serve.", serve_entries(), cfg.serve);
  append_docs(docs, "serve.lockout.", lockout_entries(), cfg.serve.lockout);
  append_docs(docs, "plans.NAME.", plan_entries(), new_plan("NAME"));
  append_docs(docs, "access.", access_entries(), cfg.access);
  return docs;
}

Result<Config> load(const std::filesystem::path& path, Required required) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec) {
    if (required == Required::no) {
      return defaults();
    }
    return fail(Errc::config, fmt::format("config file {} not found; create it or point --config / "
                                          "CLAUDEGATE_CONFIG at an existing file",
                                          path.string()));
  }
  // Whoever can write the config can grant plans and models: a file owned by
  // another user or writable by group/others is refused. A link of one's own
  // is followed (dotfile managers), its target checked.
  auto text =
      fs::read_trusted(path, {"config file", fs::PathKind::file, fs::Links::follow_own}, k_max_file_bytes);
  if (!text) {
    return propagate(text);
  }
  return parse(*text, path.string());
}

} // namespace claudegate::config
