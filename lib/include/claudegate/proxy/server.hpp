// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/config.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/store/store.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

// serve-local (DESIGN.md §2): the HTTP gateway in front of the Claude API.
namespace claudegate::proxy {

enum class UpstreamMode { forward, mock };

// Defaults are config::serve_defaults, as for the [serve] table.
struct ServeOptions {
  std::string host{config::serve_defaults::host};
  int port = config::serve_defaults::port; // 0 = any free port (reported through on_listening)
  bool allow_remote = false;
  std::string upstream{config::serve_defaults::upstream};
  std::string api_key; // never logged
  UpstreamMode mode = UpstreamMode::forward;
  std::int64_t body_limit = config::serve_defaults::body_limit;
  std::int64_t read_timeout = config::serve_defaults::read_timeout;         // seconds, client side
  std::int64_t upstream_timeout = config::serve_defaults::upstream_timeout; // seconds between upstream bytes
  std::int64_t connect_timeout = 10;                                        // seconds
  std::int64_t threads = config::serve_defaults::threads;                   // 0 = automatic
  std::int64_t drain_timeout = 30; // seconds in-flight requests get after SIGINT/SIGTERM
  std::filesystem::path log_file;  // empty = stderr
  std::string jwks_url;            // an external IdP's JWKS (https, or http to loopback); empty = none
  std::string jwks_issuer;         // the exact iss of that IdP's tokens (required with jwks_url)
  std::string jwks_plan{config::serve_defaults::jwks_plan}; // plan of an IdP token without a "plan" claim
};

// What the gateway serves from: the configuration, the home's keys folder and the store.
struct ServeResources {
  const config::Config& config;
  std::filesystem::path keys_dir;
  store::Store& store;
  const Clock& clock;
  RandomSource& random;
};

// Where to listen: a host name or address (an IPv6 one without brackets) and a port.
struct Listen {
  std::string host;
  int port = 0;
};

// Split "HOST:PORT" (or "[v6]:PORT"). Fails with config naming the expected form.
Result<Listen> parse_listen(std::string_view listen);

// Serve `options` over `resources` until SIGINT or SIGTERM; then stop
// accepting, drain in-flight requests (cancelling streams still running
// after drain_timeout, which are metered as far as they got), and return.
// `on_listening(port)` runs once the socket is bound. With a jwks_url,
// tokens of that IdP (iss jwks_issuer) are accepted too; its JWKS is
// fetched once before serving. Fails with config (non-loopback host without
// allow_remote, missing API key, bad upstream URL, no keys, jwks_url without
// jwks_issuer or refused by jwks_remote::check_url, unknown jwks_plan), io
// (cannot bind or open the log, cannot fetch the JWKS) or storage.
Result<void> run_server(const ServeOptions& options, const ServeResources& resources,
                        const std::function<void(int port)>& on_listening);

} // namespace claudegate::proxy
