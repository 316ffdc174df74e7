// SPDX-License-Identifier: Apache-2.0
#include "cmd_serve_local.hpp"

#include <claudegate/base/fs.hpp>
#include <claudegate/base/text.hpp>
#include <claudegate/proxy/server.hpp>
#include <claudegate/store/store.hpp>

#include <fmt/core.h>

#include <cstdlib>
#include <memory>

namespace claudegate::app {

namespace {

struct ServeLocalOptions {
  std::optional<std::string> listen;
  bool allow_remote = false;
  std::optional<std::string> upstream;
  std::string api_key_file;
  bool mock_upstream = false;
  std::optional<std::int64_t> threads;
  std::optional<std::int64_t> body_limit;
  std::string log_file;
  std::optional<std::string> jwks;
  std::optional<std::string> jwks_issuer;
  std::optional<std::string> jwks_plan;
};

// The Anthropic key: --api-key-file (private, like an ssh key) beats ANTHROPIC_API_KEY.
Result<std::string> api_key(const ServeLocalOptions& opt) {
  if (!opt.api_key_file.empty()) {
    auto text = fs::read_private(opt.api_key_file);
    if (!text) {
      return propagate(text);
    }
    auto key = std::string(text::trim(*text, " \t\r\n"));
    if (key.empty()) {
      return fail(Errc::config, fmt::format("--api-key-file {} is empty", opt.api_key_file));
    }
    return key;
  }
  const char* env = std::getenv("ANTHROPIC_API_KEY");
  return std::string(env != nullptr ? env : "");
}

Result<proxy::ServeOptions> serve_options(const ServeLocalOptions& opt, const config::Config& cfg) {
  auto listen = proxy::parse_listen(opt.listen.value_or(cfg.serve.listen));
  if (!listen) {
    return propagate(listen);
  }
  proxy::ServeOptions out;
  out.host = std::move(listen->host);
  out.port = listen->port;
  out.allow_remote = opt.allow_remote;
  out.upstream = opt.upstream.value_or(cfg.serve.upstream);
  out.mode = opt.mock_upstream ? proxy::UpstreamMode::mock : proxy::UpstreamMode::forward;
  out.body_limit = opt.body_limit.value_or(cfg.serve.body_limit);
  out.read_timeout = cfg.serve.read_timeout;
  out.upstream_timeout = cfg.serve.upstream_timeout;
  out.threads = opt.threads.value_or(cfg.serve.threads);
  out.log_file = opt.log_file;
  out.jwks_url = opt.jwks.value_or(cfg.serve.jwks);
  out.jwks_issuer = opt.jwks_issuer.value_or(cfg.serve.jwks_issuer);
  out.jwks_plan = opt.jwks_plan.value_or(cfg.serve.jwks_plan);
  if (!opt.mock_upstream) {
    auto key = api_key(opt);
    if (!key) {
      return propagate(key);
    }
    out.api_key = std::move(*key);
  }
  return out;
}

void announce(const proxy::ServeOptions& options, int port, const std::string& store) {
  const bool v6 = options.host.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + options.host + "]" : options.host;
  const std::string upstream = options.mode == proxy::UpstreamMode::mock ? "mock" : options.upstream;
  fmt::print(stderr, "claudegate: serving on http://{}:{} (upstream: {})\n", host, port, upstream);
  fmt::print(stderr, "claudegate: store: {}\n", store);
  if (!options.jwks_url.empty()) {
    fmt::print(stderr, "claudegate: also accepting tokens of issuer {} (keys: {}; default plan {})\n",
               options.jwks_issuer, options.jwks_url, options.jwks_plan);
  }
  std::fflush(stderr);
}

ExitCode run_serve_local(const ServeLocalOptions& opt, Context& ctx) {
  auto cfg = ctx.config();
  auto options = cfg ? serve_options(opt, **cfg) : propagate(cfg);
  auto paths = options ? ctx.paths_created() : propagate(options);
  auto store = paths ? ctx.store() : propagate(paths);
  auto location = store ? ctx.store_location() : propagate(store);
  if (!location) {
    return ctx.report(location.error());
  }
  // Reservations of a gateway that crashed mid-request would hold quota forever.
  if (auto released = (*store)->release_orphaned(store::owner_may_be_alive); released && *released > 0) {
    fmt::print(stderr, "claudegate: released {} quota reservations of gateway processes that are gone\n",
               *released);
  }
  const proxy::ServeResources resources{**cfg, paths->keys_dir, **store, ctx.clock(), ctx.random()};
  auto served = proxy::run_server(*options, resources,
                                  [&](int port) { announce(*options, port, location->display()); });
  if (!served) {
    return ctx.report(served.error());
  }
  fmt::print(stderr, "claudegate: stopped; in-flight requests drained and metered\n");
  return ExitCode::success;
}

} // namespace

void setup_serve_local(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<ServeLocalOptions>();
  auto* cmd = app.add_subcommand("serve-local", "Run the gateway: check tokens, enforce quotas, forward to "
                                                "Claude with the server-side key, meter usage");
  cmd->add_option(
      "--listen", opt->listen,
      fmt::format("HOST:PORT to listen on (default from config: {})", config::ServeConfig{}.listen));
  cmd->add_flag("--allow-remote", opt->allow_remote,
                "allow a non-loopback --listen address (then /metrics needs a role, admin by default)");
  cmd->add_option("--upstream", opt->upstream,
                  fmt::format("Claude API base URL (default {})", config::serve_defaults::upstream));
  cmd->add_option("--api-key-file", opt->api_key_file,
                  "file holding the Anthropic API key (mode 0600; default: env ANTHROPIC_API_KEY)");
  cmd->add_flag("--mock-upstream", opt->mock_upstream,
                "answer with the built-in mock Claude (no key needed)");
  cmd->add_option("--threads", opt->threads,
                  "io threads, each serving its own connections (default: one per core)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--body-limit", opt->body_limit, "largest request body in bytes (default 32 MiB)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--log", opt->log_file, "append the JSON request log to FILE (default: stderr)");
  cmd->add_option("--jwks", opt->jwks,
                  "also accept tokens signed by the keys at this JWKS URL (an external IdP's; https, or "
                  "http to loopback)");
  cmd->add_option("--jwks-iss", opt->jwks_issuer,
                  "the exact iss of the --jwks IdP's tokens (required with --jwks)");
  cmd->add_option("--jwks-plan", opt->jwks_plan,
                  fmt::format("plan of every --jwks IdP token, whatever plan it claims (default {})",
                              config::serve_defaults::jwks_plan));
  cmd->callback([opt, &ctx] { ctx.set_exit(run_serve_local(*opt, ctx)); });
}

} // namespace claudegate::app
