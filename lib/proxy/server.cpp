// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/server.hpp"

#include "gateway.hpp"
#include "http_server.hpp"
#include "keyring_watch.hpp"
#include "metrics.hpp"
#include "request_log.hpp"
#include "signal_watch.hpp"
#include "upstream.hpp"

#include "claudegate/base/duration.hpp"
#include "claudegate/base/net.hpp"
#include "claudegate/proxy/anthropic_error.hpp"
#include "claudegate/store/ledger_writer.hpp"
#include "claudegate/store/quota_book.hpp"
#include "claudegate/store/revocation_watch.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <csignal>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace claudegate::proxy {

namespace {

using Handler = std::function<Outcome(const Request&)>;

// A route: method and path ("{id}" as the last segment matches one
// segment), and whether its handler waits on the store (refresh, revoke,
// OAuth, admin), so it runs on the blocking pool and never on an io thread.
struct Route {
  std::string_view method;
  std::string_view path;
  bool blocking = false;
  Handler handler;

  // True when `req` is for this route; the {id} segment goes to req.path_params.
  bool matches(Request& req) const {
    if (req.method != method) {
      return false;
    }
    if (!path.ends_with("{id}")) {
      return req.path == path;
    }
    const std::string_view prefix = path.substr(0, path.size() - 4);
    const std::string_view rest = std::string_view(req.path).substr(std::min(prefix.size(), req.path.size()));
    if (!req.path.starts_with(prefix) || rest.empty() || rest.find('/') != std::string_view::npos) {
      return false;
    }
    req.path_params = {std::string(rest)};
    return true;
  }
};

template <Outcome (Gateway::*Forwarding)(const Request&)> Handler forwarding(Gateway& gateway) {
  return [&gateway](const Request& req) { return (gateway.*Forwarding)(req); };
}

template <void (Gateway::*Answering)(const Request&, Response&)> Handler answering(Gateway& gateway) {
  return [&gateway](const Request& req) {
    Outcome outcome;
    (gateway.*Answering)(req, outcome.response);
    return outcome;
  };
}

std::vector<Route> gateway_routes(Gateway& gateway) {
  return {
      {"POST", "/v1/messages", false, forwarding<&Gateway::messages>(gateway)},
      {"POST", "/v1/messages/count_tokens", false, forwarding<&Gateway::count_tokens>(gateway)},
      {"GET", "/v1/models", false, forwarding<&Gateway::list_models>(gateway)},
      {"GET", "/v1/models/{id}", false, forwarding<&Gateway::get_model>(gateway)},
      {"GET", "/api/hello", false,
       [](const Request&) {
         return Outcome{Response{200, {}, {}}, {}};
       }},
      {"GET", "/.well-known/jwks.json", false, answering<&Gateway::jwks>(gateway)},
      {"POST", "/auth/refresh", true, answering<&Gateway::refresh>(gateway)},
      {"POST", "/auth/revoke", true, answering<&Gateway::revoke>(gateway)},
      {"POST", "/oauth/token", true, answering<&Gateway::oauth_token>(gateway)},
      {"GET", "/healthz", false, answering<&Gateway::healthz>(gateway)},
      {"GET", "/metrics", false, answering<&Gateway::metrics>(gateway)},
      {"GET", "/admin/usage", true, answering<&Gateway::admin_usage>(gateway)},
      {"POST", "/admin/revoke", true, answering<&Gateway::admin_revoke>(gateway)},
      {"GET", "/admin/keys", true, answering<&Gateway::admin_keys>(gateway)},
  };
}

// The gateway behind the HTTP server: routing, the blocking pool, and the
// answers to requests refused before routing.
class GatewayHandler final : public RequestHandler {
public:
  GatewayHandler(Gateway& gateway, asio::thread_pool& blocking,
                 std::function<std::string(const Rejection&)> log_refusal)
      : m_gateway(gateway), m_blocking(blocking), m_routes(gateway_routes(gateway)),
        m_log_refusal(std::move(log_refusal)) {}

  asio::awaitable<void> serve(Request& req, ReplyWriter& writer) override {
    Outcome outcome = co_await route(req);
    if (outcome.forward) {
      co_await m_gateway.forward(std::move(*outcome.forward), writer);
    } else {
      co_await writer.write(outcome.response);
    }
  }

  int expect_continue(const Request& req, Response& refusal) override {
    return m_gateway.expect_continue(req, refusal);
  }

  Response refused(const Request* req, const Rejection& rejection) override {
    if (req != nullptr) {
      return m_gateway.refuse(*req, rejection);
    }
    Response res;
    write_rejection(res, rejection, m_log_refusal(rejection));
    return res;
  }

private:
  asio::awaitable<Outcome> route(Request& req) {
    const auto found = std::find_if(m_routes.begin(), m_routes.end(),
                                    [&req](const Route& route) { return route.matches(req); });
    if (found == m_routes.end()) {
      co_return Outcome{m_gateway.error_reply(req, 404), {}};
    }
    if (!found->blocking) {
      co_return answer(*found, req);
    }
    co_return co_await asio::co_spawn(
        m_blocking, [this, found, &req]() -> asio::awaitable<Outcome> { co_return answer(*found, req); },
        asio::use_awaitable);
  }

  // The route's outcome; a handler that throws (out of memory, a bug) is a 500.
  Outcome answer(const Route& route, const Request& req) {
    try {
      return route.handler(req);
    } catch (const std::exception&) {
      return Outcome{m_gateway.error_reply(req, 500), {}};
    }
  }

  Gateway& m_gateway;
  asio::thread_pool& m_blocking;
  std::vector<Route> m_routes;
  std::function<std::string(const Rejection&)> m_log_refusal;
};

Result<void> check_options(const ServeOptions& options) {
  if (!options.allow_remote && !net::is_loopback(options.host)) {
    return fail(Errc::config,
                fmt::format("--listen {} is not a loopback address; add --allow-remote to serve "
                            "other machines (and put TLS in front: tokens cross the network)",
                            options.host));
  }
  if (options.mode == UpstreamMode::forward && options.api_key.empty()) {
    return fail(Errc::config, "no Anthropic API key; set ANTHROPIC_API_KEY or pass --api-key-file FILE "
                              "(or try it offline with --mock-upstream)");
  }
  if (options.body_limit <= 0) {
    return fail(Errc::config, "--body-limit must be a positive number of bytes");
  }
  if (!options.jwks_url.empty() && options.jwks_issuer.empty()) {
    return fail(Errc::config, fmt::format("--jwks {} needs --jwks-iss ISS (or serve.jwks_issuer in the "
                                          "config): the exact iss of that IdP's tokens, e.g. "
                                          "https://TENANT.auth0.com/",
                                          options.jwks_url));
  }
  return {};
}

Result<std::unique_ptr<Upstream>> make_upstream(const ServeOptions& options, RandomSource& random) {
  if (options.mode == UpstreamMode::mock) {
    return mock_upstream(random);
  }
  return http_upstream(
      {options.upstream, options.api_key, options.connect_timeout, options.upstream_timeout});
}

std::size_t io_threads(std::int64_t threads) {
  const auto cores = static_cast<std::int64_t>(std::max(1U, std::thread::hardware_concurrency()));
  return static_cast<std::size_t>(threads > 0 ? threads : cores);
}

ServerLimits server_limits(const ServeOptions& options) {
  ServerLimits limits;
  const std::chrono::seconds read(std::min<std::int64_t>(options.read_timeout, 86'400));
  limits.head = limits.body = limits.keep_alive = read;
  limits.body_total = std::max<std::chrono::milliseconds>(10 * read, std::chrono::minutes(5));
  limits.write = std::max<std::chrono::milliseconds>(read, std::chrono::seconds(30));
  limits.body_bytes = static_cast<std::uint64_t>(options.body_limit);
  return limits;
}

// The parts every request shares, alive for the whole run. Destroyed in
// reverse: the quota book (returns its leases), the ledger (drains), the log.
struct Services {
  RequestLog log;
  std::unique_ptr<store::LedgerWriter> ledger;
  std::unique_ptr<store::QuotaBook> quota;
  std::unique_ptr<store::RevocationWatch> revocations; // the epoch the caches follow
  Metrics metrics;
  std::unique_ptr<KeyringWatch> keys;
  std::unique_ptr<Upstream> upstream;
  std::unique_ptr<jwks_remote::RemoteKeySet> idp_keys;
  std::optional<ExternalIssuer> idp;
  std::atomic<bool> aborting{false};
};

// The IdP of --jwks, its keys fetched now so a wrong URL or issuer setup fails at start.
Result<void> open_idp(Services& services, const ServeOptions& options, const ServeResources& resources) {
  if (options.jwks_url.empty()) {
    return {};
  }
  if (auto plan = resources.config.plan(options.jwks_plan); !plan) {
    return fail(Errc::config, "--jwks-plan: " + plan.error().message);
  }
  auto keys = jwks_remote::RemoteKeySet::open(options.jwks_url, resources.clock, {});
  auto first = keys ? (*keys)->keys_for({}) : propagate(keys);
  if (!first) {
    return propagate(first);
  }
  services.idp_keys = std::move(*keys);
  services.idp.emplace(ExternalIssuer{*services.idp_keys, options.jwks_issuer, options.jwks_plan});
  return {};
}

// A ledger write that failed (retried) or an entry given up at shutdown, in the request log.
store::LedgerWriter::Reporting ledger_reporting(RequestLog& log, const Clock& clock) {
  return {[&log, &clock](const Error& error, std::size_t waiting) {
            log.write({{"time", duration::format_time(clock.now())},
                       {"level", "error"},
                       {"error", fmt::format("could not record usage: {} ({} ledger entries wait; retrying)",
                                             error.message, waiting)}});
          },
          [&log, &clock](const store::LedgerEntry& entry, const Error& error) {
            if (entry.kind != store::LedgerEntry::Kind::row) {
              return; // a lease not returned expires by itself
            }
            const auto& row = entry.row;
            log.write({{"time", duration::format_time(clock.now())},
                       {"level", "error"},
                       {"request_id", row.request_id},
                       {"sub", row.subject},
                       {"model", row.model},
                       {"input_tokens", row.input_tokens},
                       {"output_tokens", row.output_tokens},
                       {"cache_read_tokens", row.cache_read_tokens},
                       {"cache_write_tokens", row.cache_write_tokens},
                       {"error", fmt::format("usage not recorded: {}", error.message)}});
          }};
}

// Quota leases in memory and the write-behind ledger (DESIGN.md §3).
void open_metering(Services& services, const ServeResources& resources) {
  store::LedgerWriter::Options options;
  // Rows wait up to this long for company: one transaction per few ms under
  // load, well inside the 50 ms after which a 200 must survive a kill -9.
  options.max_delay = std::chrono::milliseconds{5};
  services.ledger = std::make_unique<store::LedgerWriter>(
      resources.store, ledger_reporting(services.log, resources.clock), options);
  services.quota = std::make_unique<store::QuotaBook>(resources.store, *services.ledger, resources.clock);
}

// After the server stopped: leases back, the ledger and the log written out.
void close_metering(Services& services) {
  if (services.quota) {
    services.quota->close();
  }
  if (services.ledger) {
    services.ledger->drain();
  }
  services.log.drain();
}

Result<void> open_services(Services& services, const ServeOptions& options, const ServeResources& resources) {
  if (auto opened = services.log.open(options.log_file); !opened) {
    return opened;
  }
  open_metering(services, resources);
  auto revocations = store::RevocationWatch::start(resources.store);
  if (!revocations) {
    return propagate(revocations);
  }
  services.revocations = std::move(*revocations);
  auto keys = KeyringWatch::open(resources.keys_dir, resources.clock);
  if (!keys) {
    return propagate(keys);
  }
  if ((*keys)->current()->verification_keys().empty()) {
    return fail(Errc::config, "no keys to verify tokens with; run: claudegate keygen");
  }
  services.keys = std::move(*keys);
  auto upstream = make_upstream(options, resources.random);
  if (!upstream) {
    return propagate(upstream);
  }
  services.upstream = std::move(*upstream);
  return open_idp(services, options, resources);
}

// Meter and log a head refused before routing, as the gateway does its own errors.
std::function<std::string(const Rejection&)> refusal_log(Services& services,
                                                         const ServeResources& resources) {
  return [&services, &resources](const Rejection& rejection) {
    std::string request_id = new_request_id(resources.random);
    services.metrics.count_request(rejection.status);
    services.log.write({{"time", duration::format_time(resources.clock.now())},
                        {"request_id", request_id},
                        {"route", ""},
                        {"status", rejection.status},
                        {"error", rejection.message}});
    return request_id;
  };
}

} // namespace

Result<Listen> parse_listen(std::string_view listen) {
  const auto colon = listen.rfind(':');
  const auto bad = [&] {
    return fail(Errc::config, fmt::format("--listen '{}' is not HOST:PORT, e.g. 127.0.0.1:8787", listen));
  };
  if (colon == std::string_view::npos || colon == 0) {
    return bad();
  }
  std::string_view host = listen.substr(0, colon);
  const std::string_view port_text = listen.substr(colon + 1);
  int port = -1;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return bad();
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return Listen{std::string(host), port};
}

Result<void> run_server(const ServeOptions& options, const ServeResources& resources,
                        const std::function<void(int port)>& on_listening) {
  std::signal(SIGPIPE, SIG_IGN); // a client that hangs up is a failed write, not a dead process
  SignalWatch signals;           // before any thread starts (the ledger's too), so they all inherit the mask
  Services services;
  auto ready = check_options(options);
  ready = ready ? open_services(services, options, resources) : ready;
  if (!ready) {
    return ready;
  }
  const access::AccessPolicy roles(access::route_roles(resources.config.access),
                                   options.allow_remote ? access::Reach::remote : access::Reach::loopback);
  Gateway gateway({resources.config, resources.store, *services.revocations, *services.quota, resources.clock,
                   resources.random, *services.keys, *services.upstream, services.metrics, services.log,
                   options.body_limit, services.idp ? &*services.idp : nullptr},
                  roles);
  const std::size_t threads = io_threads(options.threads);
  asio::thread_pool blocking(std::max<std::size_t>(threads, 2));
  GatewayHandler handler(gateway, blocking, refusal_log(services, resources));
  HttpServer server(handler, server_limits(options), threads);
  auto port = server.bind(options.host, options.port);
  if (!port) {
    return propagate(port);
  }
  on_listening(*port);
  signals.start({[&server] { return server.running(); }, [&server] { server.stop_accepting(); },
                 [&server] { server.cut_off(); }},
                services.aborting, options.drain_timeout);
  server.run(); // returns once stopped and every connection has ended
  signals.finish();
  blocking.join();
  close_metering(services);
  return {};
}

} // namespace claudegate::proxy
