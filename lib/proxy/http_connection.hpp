// SPDX-License-Identifier: Apache-2.0
// Internal to proxy: one client connection of HttpServer, as one coroutine
// (http_connection.cpp) reading requests from a single buffer (pipelined
// requests are kept), with one deadline timer for whatever it waits on.
#pragma once

#include "chunked_body.hpp"
#include "http_server.hpp"

#include <boost/asio/steady_timer.hpp>

#include <variant>

namespace claudegate::proxy {

struct HttpServer::Shared {
  RequestHandler& handler;
  ServerLimits limits;
  std::atomic<bool> stopping{false};
  std::atomic<bool> cut{false};
  std::atomic<std::size_t> connections{0};
  std::mutex mutex; // guards what follows
  std::unordered_map<std::string, std::size_t> per_peer;
  std::vector<std::weak_ptr<class HttpConnection>> open;
  std::function<void()> on_idle; // every connection has ended after stop_accepting
};

class HttpConnection final : public std::enable_shared_from_this<HttpConnection> {
public:
  HttpConnection(asio::ip::tcp::socket socket, HttpServer::Shared& shared, std::string peer, int port);
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  ~HttpConnection();

  // Serve requests until the client leaves, a request ends the connection or the server stops.
  asio::awaitable<void> run();

  asio::any_io_executor executor() { return m_socket.get_executor(); }

  // On the connection's executor: close now when waiting for a request (stop_accepting).
  void stop_if_idle();
  // On the connection's executor: end everything now (cut_off).
  void cut();

  // For the reply writer.
  asio::awaitable<bool> send(std::vector<asio::const_buffer> buffers);
  asio::awaitable<void> wait_gone();

  // A request head as parsed, and whether the connection may serve another after it.
  struct ParsedHead {
    Request request;
    bool keep_alive = false;
  };

private:
  struct Closed {};
  using HeadRead = std::variant<std::size_t, Rejection, Closed>;

  asio::awaitable<HeadRead> read_head();

  // Receive more onto the buffer: the byte count, 0 when closed or failed.
  asio::awaitable<std::size_t> receive();
  // The body read whole, or why not: a rejection, or none when the client left.
  using BodyRead = std::expected<void, std::optional<Rejection>>;
  asio::awaitable<BodyRead> read_body(Request& request, const BodyFraming& framing);
  asio::awaitable<BodyRead> read_length(std::uint64_t length, std::string& body);
  asio::awaitable<BodyRead> read_chunked(std::string& body);
  BodyRead cut_short();
  void body_progress();
  // Serve one request whose checked head is `head`; false when the connection must end.
  asio::awaitable<bool> serve(const std::string& head);
  asio::awaitable<bool> continue_or_refuse(const Request& request);
  // Answer `response` and close gracefully (the client may still be sending).
  asio::awaitable<void> refuse(Response response);
  asio::awaitable<void> linger();
  asio::awaitable<void> watchdog();
  void set_deadline(std::chrono::steady_clock::time_point deadline);
  void clear_deadline();

  std::string_view pending() const { return std::string_view(m_buffer).substr(m_offset); }
  void consume(std::size_t n);

  asio::ip::tcp::socket m_socket;
  asio::steady_timer m_timer;
  std::chrono::steady_clock::time_point m_deadline = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point m_body_cap; // the latest a body being read may end
  bool m_expired = false; // the deadline passed and the socket's operations were cancelled
  bool m_idle = false;    // waiting for a request's first byte
  bool m_done = false;
  HttpServer::Shared& m_shared;
  std::string m_peer;
  int m_port = 0;
  std::string m_buffer;
  std::size_t m_offset = 0;
};

} // namespace claudegate::proxy
