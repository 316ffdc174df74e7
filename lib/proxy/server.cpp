// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/server.hpp"

#include "client_stream.hpp"
#include "gateway.hpp"
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

#include <fmt/core.h>
#include <httplib.h>

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

std::string_view reason_phrase(int status) {
  switch (status) {
  case 400:
    return "Bad Request";
  case 408:
    return "Request Timeout";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 431:
    return "Request Header Fields Too Large";
  default:
    return "Error";
  }
}

// A rejection as a complete HTTP/1.1 response that closes the connection.
std::string raw_response(const Rejection& rejection, const std::string& request_id) {
  httplib::Response res;
  write_rejection(res, rejection, request_id);
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", res.status, reason_phrase(res.status));
  for (const auto& [name, value] : res.headers) {
    out += fmt::format("{}: {}\r\n", name, value);
  }
  return out + fmt::format("Content-Length: {}\r\nConnection: close\r\n\r\n{}", res.body.size(), res.body);
}

// httplib's stop() also ends every chunked response in flight (it checks
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

  // Read timeouts and head bounds for every connection, and what answers a
  // head refused before httplib saw it (returns the request id).
  void guard_heads(ClientStream::Limits limits, std::function<std::string(const Rejection&)> on_refused) {
    m_limits = limits;
    m_on_refused = std::move(on_refused);
  }

private:
  // httplib's own per-connection loop (a private virtual, its only hook
  // there), with one ClientStream for the whole connection.
  bool process_and_close_socket(socket_t sock) override {
    const int yes = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    ClientStream stream(sock, m_limits);
    const ServingClient serving(stream);
    const int keep_alive_ms = static_cast<int>(keep_alive_timeout_sec_ * 1000);
    while (svr_sock_ != INVALID_SOCKET && stream.wait_request(keep_alive_ms)) {
      if (const auto refused = stream.next_head()) {
        if (*refused) {
          const std::string response = raw_response(**refused, m_on_refused(**refused));
          stream.write(response.data(), response.size());
          linger_close(sock);
          return true;
        }
        break;
      }
      bool closed = false;
      stream.begin_response();
      const bool processed = process_request(stream, false, closed, nullptr);
      const bool flushed = stream.flush();
      if (stream.lost_track()) { // unread bytes may still come: drain them so the answer is not reset
        linger_close(sock);
        return true;
      }
      if (!flushed || !processed || closed) {
        break;
      }
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return true;
  }

  ClientStream::Limits m_limits;
  std::function<std::string(const Rejection&)> m_on_refused;
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

// A body relayed as the upstream encoded it (Content-Encoding) must leave
// as it is: without the client's Accept-Encoding httplib does not compress
// it again. (httplib hands handlers a const view of the Request it owns.)
void keep_encoding(const httplib::Request& req, const httplib::Response& res) {
  if (res.has_header("Content-Encoding")) {
    const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
  }
}

// A HEAD is answered as its GET (RFC 9110 §9.3.2): the gateway sees and
// forwards a GET, and httplib writes the head without the body. The copy's
// regex matches still point into `req`, which outlives the call.
template <void (Gateway::*Handler)(const httplib::Request&, httplib::Response&)>
void handle_as_get(Gateway& gateway, const httplib::Request& req, httplib::Response& res) {
  httplib::Request get = req;
  get.method = "GET";
  (gateway.*Handler)(get, res);
}

template <void (Gateway::*Handler)(const httplib::Request&, httplib::Response&)>
httplib::Server::Handler bind_route(Gateway& gateway) {
  return [&gateway](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "HEAD") {
      handle_as_get<Handler>(gateway, req, res);
    } else {
      (gateway.*Handler)(req, res);
    }
    keep_encoding(req, res);
  };
}

// httplib's own error (404, a body it could not read, …) in the envelope;
// a chunked body the stream refused gets that refusal's status and reason.
httplib::Server::HandlerWithResponse error_route(Gateway& gateway) {
  return [&gateway](const httplib::Request& req, httplib::Response& res) {
    const auto refusal = body_refusal_here();
    if (refusal) {
      res.status = refusal->status;
    }
    if (!gateway.fill_error(req, res)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    if (refusal) {
      res.body = error_body(refusal->type, refusal->message, res.get_header_value("request-id"));
    }
    return httplib::Server::HandlerResponse::Handled;
  };
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
  server.Post("/oauth/token", bind_route<&Gateway::oauth_token>(gateway));
  server.Get("/healthz", bind_route<&Gateway::healthz>(gateway));
  server.Get("/metrics", bind_route<&Gateway::metrics>(gateway));
  server.Get("/admin/usage", bind_route<&Gateway::admin_usage>(gateway));
  server.Post("/admin/revoke", bind_route<&Gateway::admin_revoke>(gateway));
  server.Get("/admin/keys", bind_route<&Gateway::admin_keys>(gateway));
  server.set_error_handler(error_route(gateway));
  // Before 100 Continue: a body above the limit or a request without a valid credential is refused unsent.
  server.set_expect_100_continue_handler([&gateway](const httplib::Request& req, httplib::Response& res) {
    return gateway.expect_continue(req, res);
  });
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

// The parts every request shares, alive for the whole run. Destroyed in
// reverse: the quota book (returns its leases), the ledger (drains), the log.
struct Services {
  RequestLog log;
  std::unique_ptr<store::LedgerWriter> ledger;
  std::unique_ptr<store::QuotaBook> quota;
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
  services.ledger =
      std::make_unique<store::LedgerWriter>(resources.store, ledger_reporting(services.log, resources.clock));
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

ClientStream::Limits stream_limits(const ServeOptions& options) {
  ClientStream::Limits limits;
  limits.read_ms = static_cast<int>(std::min<std::int64_t>(options.read_timeout, 86'400) * 1000);
  limits.write_ms = std::max(limits.read_ms, 30'000);
  limits.head_ms = limits.read_ms;
  limits.body = static_cast<std::uint64_t>(options.body_limit);
  return limits;
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
  Gateway gateway({resources.config, resources.store, *services.quota, resources.clock, resources.random,
                   *services.keys, *services.upstream, services.metrics, services.log, services.aborting,
                   options.body_limit, services.idp ? &*services.idp : nullptr},
                  roles);
  GatewayServer server;
  configure(server, options);
  server.guard_heads(stream_limits(options), refusal_log(services, resources));
  add_routes(server, gateway);
  auto port = bind(server, options);
  if (!port) {
    return propagate(port);
  }
  on_listening(*port);
  signals.start({[&server] { return server.is_running(); }, [&server] { server.stop_accepting(); },
                 [&server] { server.cut_streams(); }},
                services.aborting, options.drain_timeout);
  const bool served = server.listen_after_bind(); // returns once stopped and every worker is done
  signals.finish();
  close_metering(services);
  if (!served && !signals.received()) {
    return fail(Errc::io, fmt::format("serving on {}:{} failed", options.host, *port));
  }
  return {};
}

} // namespace claudegate::proxy
