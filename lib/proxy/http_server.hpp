// SPDX-License-Identifier: Apache-2.0
// Internal to proxy: serve-local's HTTP/1.1 server (DESIGN.md §2) on
// Boost.Asio/Beast. A few io threads, each running its own io_context and
// owning the connections it accepted; every connection is one coroutine, so
// a slow or idle client costs a coroutine frame and its buffer, never a thread.
#pragma once

#include "reply_writer.hpp"
#include "wire.hpp"

#include "claudegate/base/errors.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace claudegate::proxy {

// What answers the requests of a connection (server.cpp routes them to the gateway).
class RequestHandler {
public:
  virtual ~RequestHandler() = default;
  // Answer `request` through `writer` (a whole response, or a relayed one).
  virtual asio::awaitable<void> serve(Request& request, ReplyWriter& writer) = 0;
  // Answer an Expect: 100-continue head before its body: 100, or the
  // status of the refusal put in `refusal`.
  virtual int expect_continue(const Request& request, Response& refusal) = 0;
  // The response to a request refused before routing (`request` null: its
  // head could not be parsed), metered and logged.
  virtual Response refused(const Request* request, const Rejection& rejection) = 0;
};

struct ServerLimits {
  std::chrono::milliseconds head{30'000};        // the whole request head, from its first byte
  std::chrono::milliseconds body{30'000};        // between bytes of a request body
  std::chrono::milliseconds body_total{300'000}; // the whole request body
  std::chrono::milliseconds keep_alive{30'000};  // idle between requests
  std::chrono::milliseconds write{30'000};       // each write to the client
  HeadLimits head_bytes;
  std::uint64_t body_bytes = 32 * 1024 * 1024;
  std::size_t per_peer = 512; // connections at once from one non-loopback address
};

class HttpServer {
public:
  HttpServer(RequestHandler& handler, ServerLimits limits, std::size_t io_threads);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  // Listen on host:port (0: any free port) with the system's backlog; the port.
  // Fails with io when the address is in use or not local.
  Result<int> bind(const std::string& host, int port);

  // Serve on the io threads until stopped and every connection has ended.
  void run();

  bool running() const { return m_running.load(); }

  // Thread-safe: stop accepting; idle connections close, requests in
  // flight finish and their connections close after the response.
  void stop_accepting();
  // Thread-safe: end the requests still in flight (the drain period is
  // over); their forwards see the client gone and are metered as far as they got.
  void cut_off();

  // For the connections: the shared parts.
  struct Shared;

private:
  asio::awaitable<void> accept_loop();

  std::unique_ptr<Shared> m_shared;
  std::vector<std::unique_ptr<asio::io_context>> m_contexts;
  std::optional<asio::ip::tcp::acceptor> m_acceptor;
  std::atomic<bool> m_running{false};
};

} // namespace claudegate::proxy
