// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/server.hpp"

#include "gateway.hpp"
#include "keyring_watch.hpp"
#include "metrics.hpp"
#include "request_log.hpp"
#include "upstream.hpp"

#include <fmt/core.h>
#include <httplib.h>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <charconv>
#include <csignal>
#include <pthread.h>
#include <sys/socket.h>
#include <thread>

namespace claudegate::proxy {

namespace {

// httplib's stop() also ends every chunked response in flight (0.11.4 checks
// the listening socket between chunks), which would cut streams short; this
// server can instead stop accepting and let requests in flight finish.
class GatewayServer final : public httplib::Server {
public:
  // Wake the accept loop so listen returns once the workers are done.
  void stop_accepting() {
    const auto sock = svr_sock_.load();
    if (sock != INVALID_SOCKET) {
      ::shutdown(sock, SHUT_RDWR);
    }
  }

  // Make httplib end the streams still running (the drain period is over).
  void cut_streams() { svr_sock_ = INVALID_SOCKET; }

  // Debian's shared httplib listens with a compiled-in backlog of 5: a burst
  // of new connections overflows it and waits out 1–3 s SYN retries.
  // Listening again on the bound socket raises the backlog (Linux).
  void widen_backlog() {
    const auto sock = svr_sock_.load();
    if (sock != INVALID_SOCKET) {
      ::listen(sock, SOMAXCONN);
    }
  }
};

// SIGINT/SIGTERM are blocked in every thread (set before any is started)
// and taken by one watcher: the first stops the server, a second one or the
// end of the drain period cancels the streams still running.
class SignalWatch {
public:
  SignalWatch() {
    sigemptyset(&m_set);
    sigaddset(&m_set, SIGINT);
    sigaddset(&m_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &m_set, &m_old);
  }
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;
  ~SignalWatch() {
    finish();
    pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
  }

  // Stop watching and wait for the watcher thread.
  void finish() {
    m_quit = true;
    if (m_thread.joinable()) {
      m_thread.join();
    }
  }

  void start(GatewayServer& server, std::atomic<bool>& aborting, std::int64_t drain_timeout) {
    m_thread = std::thread([this, &server, &aborting, drain_timeout] {
      if (!wait_signal(-1)) {
        return;
      }
      m_received = true;
      while (!server.is_running() && !m_quit) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      server.stop_accepting();
      wait_signal(drain_timeout * 1000);
      if (!m_quit) {
        aborting = true;
        server.cut_streams();
      }
    });
  }

  bool received() const { return m_received; }

private:
  // Wait for a signal (true), up to `limit_ms` (negative: no limit) or until quit (false).
  bool wait_signal(std::int64_t limit_ms) {
    const timespec tick{0, 200 * 1000 * 1000};
    for (std::int64_t waited = 0; !m_quit && (limit_ms < 0 || waited < limit_ms); waited += 200) {
      if (sigtimedwait(&m_set, nullptr, &tick) > 0) {
        return true;
      }
    }
    return false;
  }

  sigset_t m_set{};
  sigset_t m_old{};
  std::atomic<bool> m_quit{false};
  std::atomic<bool> m_received{false};
  std::thread m_thread;
};

Result<void> check_options(const ServeOptions& options) {
  if (!options.allow_remote && !is_loopback(options.host)) {
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

std::size_t pool_size(std::int64_t threads) {
  // Every stream holds a worker for its whole length, so the pool is sized for long streams.
  const auto hardware = static_cast<std::int64_t>(std::max(1U, std::thread::hardware_concurrency()));
  const std::int64_t wanted = threads > 0 ? threads : 8 * hardware;
  return static_cast<std::size_t>(std::max<std::int64_t>(wanted, 64));
}

void configure(httplib::Server& server, const ServeOptions& options) {
  const std::size_t workers = pool_size(options.threads);
  server.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  server.set_payload_max_length(static_cast<std::size_t>(options.body_limit));
  server.set_read_timeout(static_cast<time_t>(options.read_timeout), 0);
  server.set_write_timeout(static_cast<time_t>(std::max<std::int64_t>(options.read_timeout, 30)), 0);
  server.set_tcp_nodelay(true); // SSE events leave as soon as they are written
  // httplib closes a connection after this many requests (default 5). Keep
  // it effectively unlimited: its listen backlog is a compiled-in 5, and
  // many clients reconnecting at once overflow it (1–3 s SYN retries).
  server.set_keep_alive_max_count(1'000'000);
  // httplib's default SO_REUSEPORT lets a second server bind a port already
  // served and silently take half its connections; SO_REUSEADDR alone still
  // allows a quick restart but makes "port in use" an error.
  server.set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
}

template <void (Gateway::*Handler)(const httplib::Request&, httplib::Response&)>
httplib::Server::Handler bind_route(Gateway& gateway) {
  return [&gateway](const httplib::Request& req, httplib::Response& res) { (gateway.*Handler)(req, res); };
}

void add_routes(httplib::Server& server, Gateway& gateway) {
  server.Post("/v1/messages", bind_route<&Gateway::messages>(gateway));
  server.Post("/v1/messages/count_tokens", bind_route<&Gateway::count_tokens>(gateway));
  server.Get("/v1/models", bind_route<&Gateway::list_models>(gateway));
  server.Get(R"(/v1/models/([^/]+))", bind_route<&Gateway::get_model>(gateway));
  server.Get("/api/hello", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  server.Get("/.well-known/jwks.json", bind_route<&Gateway::jwks>(gateway));
  server.Post("/auth/refresh", bind_route<&Gateway::refresh>(gateway));
  server.Post("/auth/revoke", bind_route<&Gateway::revoke>(gateway));
  server.Get("/healthz", bind_route<&Gateway::healthz>(gateway));
  server.Get("/metrics", bind_route<&Gateway::metrics>(gateway));
  server.set_error_handler(
      httplib::Server::HandlerWithResponse([&gateway](const httplib::Request& req, httplib::Response& res) {
        return gateway.fill_error(req, res) ? httplib::Server::HandlerResponse::Handled
                                            : httplib::Server::HandlerResponse::Unhandled;
      }));
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.body.clear();
  });
}

Result<int> bind(GatewayServer& server, const ServeOptions& options) {
  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
  } else if (!server.bind_to_port(options.host, port)) {
    port = -1;
  }
  if (port >= 0) {
    server.widen_backlog();
  }
  if (port < 0) {
    return fail(Errc::io, fmt::format("cannot listen on {}:{} (address in use or not local?); pick another "
                                      "with --listen HOST:PORT",
                                      options.host, options.port));
  }
  return port;
}

// The parts every request shares, alive for the whole run.
struct Services {
  RequestLog log;
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
  auto first = keys ? (*keys)->keys_for({}) : std::unexpected(keys.error());
  if (!first) {
    return std::unexpected(first.error());
  }
  services.idp_keys = std::move(*keys);
  services.idp.emplace(ExternalIssuer{*services.idp_keys, options.jwks_issuer, options.jwks_plan});
  return {};
}

Result<void> open_services(Services& services, const ServeOptions& options, const ServeResources& resources) {
  if (auto opened = services.log.open(options.log_file); !opened) {
    return opened;
  }
  auto keys = KeyringWatch::open(resources.keys_dir, resources.clock);
  if (!keys) {
    return std::unexpected(keys.error());
  }
  if ((*keys)->current()->verification_keys().empty()) {
    return fail(Errc::config, "no keys to verify tokens with; run: claudegate keygen");
  }
  services.keys = std::move(*keys);
  auto upstream = make_upstream(options, resources.random);
  if (!upstream) {
    return std::unexpected(upstream.error());
  }
  services.upstream = std::move(*upstream);
  return open_idp(services, options, resources);
}

} // namespace

Result<void> parse_listen(std::string_view listen, ServeOptions& options) {
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
  options.host = std::string(host);
  options.port = port;
  return {};
}

bool is_loopback(std::string_view host) {
  if (host == "localhost" || host == "::1") {
    return true;
  }
  // A literal 127.0.0.0/8 address only: "127.example.com" could resolve anywhere.
  in_addr addr{};
  return inet_pton(AF_INET, std::string(host).c_str(), &addr) == 1 && (ntohl(addr.s_addr) >> 24) == 127;
}

Result<void> run_server(const ServeOptions& options, const ServeResources& resources,
                        const std::function<void(int port)>& on_listening) {
  Services services;
  auto ready = check_options(options);
  ready = ready ? open_services(services, options, resources) : ready;
  if (!ready) {
    return ready;
  }
  std::signal(SIGPIPE, SIG_IGN); // a client that hangs up is a failed write, not a dead process
  SignalWatch signals;           // before any thread starts, so they all inherit the mask
  Gateway gateway({resources.config, resources.store, resources.clock, resources.random, *services.keys,
                   *services.upstream, services.metrics, services.log, services.aborting, options.body_limit,
                   services.idp ? &*services.idp : nullptr});
  GatewayServer server;
  configure(server, options);
  add_routes(server, gateway);
  auto port = bind(server, options);
  if (!port) {
    return std::unexpected(port.error());
  }
  on_listening(*port);
  signals.start(server, services.aborting, options.drain_timeout);
  const bool served = server.listen_after_bind(); // returns once stopped and every worker is done
  signals.finish();
  if (!served && !signals.received()) {
    return fail(Errc::io, fmt::format("serving on {}:{} failed", options.host, *port));
  }
  return {};
}

} // namespace claudegate::proxy
