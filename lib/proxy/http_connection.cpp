// SPDX-License-Identifier: Apache-2.0
#include "http_connection.hpp"

#include "response_writer.hpp"

#include "claudegate/base/text.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <fmt/core.h>

namespace claudegate::proxy {

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto k_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t k_read_size = 16 * 1024;
constexpr std::size_t k_max_linger_bytes = 4 * 1024 * 1024;
constexpr auto k_linger = std::chrono::seconds(2);

// The request `head` (checked by check_request_head) as the handlers see it.
std::optional<HttpConnection::ParsedHead> parse_request(const std::string& head, const ServerLimits& limits) {
  http::request_parser<http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.head_bytes.max_bytes + 1024));
  parser.body_limit(boost::none);
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(asio::buffer(head), ec);
  if (!parser.is_header_done()) {
    return std::nullopt;
  }
  const auto& message = parser.get();
  Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  const auto query = request.target.find('?');
  request.path = percent_decode(std::string_view(request.target).substr(0, query), false);
  if (query != std::string::npos) {
    request.params = parse_query(std::string_view(request.target).substr(query + 1));
  }
  request.headers = message.base();
  if (request.method == "HEAD") { // answered as its GET (RFC 9110 §9.3.2), without the body
    request.method = "GET";
    request.head_only = true;
  }
  return HttpConnection::ParsedHead{std::move(request), message.keep_alive()};
}

bool wants_continue(const Request& request) {
  return text::lower(request.header("Expect")) == "100-continue";
}

} // namespace

HttpConnection::HttpConnection(asio::ip::tcp::socket socket, HttpServer::Shared& shared, std::string peer,
                               int port)
    : m_socket(std::move(socket)), m_timer(m_socket.get_executor()), m_shared(shared),
      m_peer(std::move(peer)), m_port(port) {
  m_timer.expires_at(SteadyClock::time_point::max());
}

HttpConnection::~HttpConnection() {
  std::function<void()> on_idle;
  {
    const std::lock_guard lock(m_shared.mutex);
    // Loopback peers are not counted (admit_peer), so never in per_peer.
    if (auto it = m_shared.per_peer.find(m_peer); it != m_shared.per_peer.end() && --it->second == 0) {
      m_shared.per_peer.erase(it);
    }
    if (--m_shared.connections == 0 && m_shared.stopping) {
      on_idle = m_shared.on_idle;
    }
  }
  if (on_idle) {
    on_idle();
  }
}

asio::awaitable<void> HttpConnection::run() {
  auto self = shared_from_this();
  asio::co_spawn(
      m_socket.get_executor(), [self]() { return self->watchdog(); }, asio::detached);
  for (;;) {
    const HeadRead read = co_await read_head();
    if (std::holds_alternative<Closed>(read)) {
      break;
    }
    if (const auto* rejection = std::get_if<Rejection>(&read)) {
      co_await refuse(m_shared.handler.refused(nullptr, *rejection));
      break;
    }
    const auto size = std::get<std::size_t>(read);
    auto checked = check_request_head(pending().substr(0, size), m_shared.limits.head_bytes);
    consume(size);
    if (!checked) {
      co_await refuse(m_shared.handler.refused(nullptr, checked.error()));
      break;
    }
    const bool served = co_await serve(*checked);
    if (!served || m_shared.stopping) {
      break;
    }
  }
  m_done = true;
  boost::system::error_code ignored;
  m_socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  m_socket.close(ignored);
  m_timer.cancel();
}

asio::awaitable<bool> HttpConnection::serve(const std::string& head) {
  auto parsed = parse_request(head, m_shared.limits);
  if (!parsed) {
    co_await refuse(m_shared.handler.refused(
        nullptr, Rejection{400, "invalid_request_error", "malformed request head", std::nullopt, false}));
    co_return false;
  }
  Request* request = &parsed->request;
  request->remote_addr = m_peer;
  request->remote_port = m_port;
  const BodyFraming framing = body_framing(head);
  if (framing.length > m_shared.limits.body_bytes) {
    co_await refuse(m_shared.handler.refused(
        request, Rejection{413, "request_too_large",
                           fmt::format("request body is larger than the limit of {} bytes",
                                       m_shared.limits.body_bytes)}));
    co_return false;
  }
  if (wants_continue(*request)) {
    const bool continued = co_await continue_or_refuse(*request);
    if (!continued) {
      co_return false;
    }
  }
  auto body = co_await read_body(*request, framing);
  if (!body) { // refused, or the client left mid-body (nothing to answer)
    if (body.error()) {
      co_await refuse(m_shared.handler.refused(request, *body.error()));
    }
    co_return false;
  }
  add_form_params(*request);
  ResponseWriter writer(*this, parsed->keep_alive && !m_shared.stopping, request->head_only);
  co_await m_shared.handler.serve(*request, writer);
  co_return writer.reusable();
}

// Refused before its body: the body a client sends anyway is never read as a request.
asio::awaitable<bool> HttpConnection::continue_or_refuse(const Request& request) {
  Response refusal;
  if (m_shared.handler.expect_continue(request, refusal) == 100) {
    static constexpr std::string_view k_continue = "HTTP/1.1 100 Continue\r\n\r\n";
    std::vector<asio::const_buffer> parts{asio::buffer(k_continue)};
    co_return co_await send(std::move(parts));
  }
  co_await refuse(std::move(refusal));
  co_return false;
}

asio::awaitable<void> HttpConnection::refuse(Response response) {
  ResponseWriter writer(*this, false, false);
  co_await writer.write(response);
  co_await linger();
}

// Stop sending, then read what the client still sends for a moment, so
// closing with unread bytes does not reset the connection before the
// client has read the answer.
asio::awaitable<void> HttpConnection::linger() {
  boost::system::error_code ec;
  m_socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  set_deadline(SteadyClock::now() + k_linger);
  std::string sink(k_read_size, '\0');
  std::size_t drained = 0;
  while (!ec && drained < k_max_linger_bytes) {
    std::size_t n = 0;
    std::tie(ec, n) = co_await m_socket.async_read_some(asio::buffer(sink), k_tuple);
    drained += n;
  }
  clear_deadline();
}

asio::awaitable<HttpConnection::HeadRead> HttpConnection::read_head() {
  m_idle = pending().empty();
  if (m_idle && m_shared.stopping) {
    co_return Closed{};
  }
  const auto limits = m_shared.limits;
  set_deadline(SteadyClock::now() + (m_idle ? limits.keep_alive : limits.head));
  for (;;) {
    const std::string_view head = pending();
    if (const auto end = head.find("\r\n\r\n"); end != std::string_view::npos) {
      clear_deadline();
      co_return end + 4;
    }
    if (const auto end = head.find("\n\n"); end != std::string_view::npos) {
      clear_deadline();
      co_return end + 2; // a bare-LF head, for check_request_head to refuse
    }
    if (auto too_big = check_partial_head(head, m_shared.limits.head_bytes)) {
      co_return *too_big;
    }
    const std::size_t got = co_await receive();
    if (got == 0) {
      const bool timed_out = m_expired && !pending().empty();
      m_expired = false;
      if (timed_out) {
        co_return Rejection{
            408, "timeout_error",
            fmt::format("the request headers did not arrive within {} s", limits.head.count() / 1000),
            std::nullopt, false};
      }
      co_return Closed{};
    }
    if (m_idle) { // the head's own deadline runs from its first byte
      m_idle = false;
      set_deadline(SteadyClock::now() + limits.head);
    }
  }
}

asio::awaitable<std::size_t> HttpConnection::receive() {
  if (m_offset > 0 && m_offset == m_buffer.size()) {
    m_buffer.clear();
    m_offset = 0;
  }
  const std::size_t had = m_buffer.size();
  // Grown without zero-filling: the read overwrites what it delivers.
  m_buffer.resize_and_overwrite(had + k_read_size, [](char*, std::size_t size) { return size; });
  auto [ec, n] = co_await m_socket.async_read_some(asio::buffer(m_buffer.data() + had, k_read_size), k_tuple);
  m_buffer.resize(had + (ec ? 0 : n));
  co_return ec ? 0 : n;
}

void HttpConnection::consume(std::size_t n) {
  m_offset += n;
  if (m_offset == m_buffer.size()) {
    m_buffer.clear();
    m_offset = 0;
  }
}

asio::awaitable<HttpConnection::BodyRead> HttpConnection::read_body(Request& request,
                                                                    const BodyFraming& framing) {
  m_body_cap = SteadyClock::now() + m_shared.limits.body_total;
  body_progress();
  BodyRead read;
  if (framing.chunked) {
    read = co_await read_chunked(request.body);
  } else if (framing.length > 0) {
    read = co_await read_length(framing.length, request.body);
  }
  clear_deadline();
  if (!read && read.error() && read.error()->status == 400 && read.error()->message.empty()) {
    read.error()->message =
        fmt::format("{} {}: the request body did not arrive in full ({} not met in time)", request.method,
                    request.path, framing.chunked ? "chunked framing" : "Content-Length");
  }
  co_return read;
}

// The body stopped short: the deadline passed (a 400, message filled in by
// read_body), or the client closed its end (nothing to answer).
HttpConnection::BodyRead HttpConnection::cut_short() {
  if (std::exchange(m_expired, false)) {
    return std::unexpected(Rejection{400, "invalid_request_error", "", std::nullopt, false});
  }
  return std::unexpected(std::nullopt);
}

asio::awaitable<HttpConnection::BodyRead> HttpConnection::read_length(std::uint64_t length,
                                                                      std::string& body) {
  while (pending().size() < length) {
    const std::size_t got = co_await receive();
    if (got == 0) {
      co_return cut_short();
    }
    body_progress();
  }
  body.assign(pending().substr(0, static_cast<std::size_t>(length)));
  consume(static_cast<std::size_t>(length));
  co_return BodyRead{};
}

asio::awaitable<HttpConnection::BodyRead> HttpConnection::read_chunked(std::string& body) {
  ChunkedBody decoder(m_shared.limits.body_bytes, m_shared.limits.head_bytes.max_line);
  for (;;) {
    auto used = decoder.feed(pending(), body);
    if (!used) {
      co_return std::unexpected(used.error());
    }
    consume(*used);
    if (decoder.done()) {
      co_return BodyRead{};
    }
    const std::size_t got = co_await receive();
    if (got == 0) {
      co_return cut_short();
    }
    body_progress();
  }
}

// A body may take its time as long as it keeps coming: the read timeout
// runs between its bytes, and a cap bounds the whole.
void HttpConnection::body_progress() {
  set_deadline(std::min(SteadyClock::now() + m_shared.limits.body, m_body_cap));
}

asio::awaitable<bool> HttpConnection::send(std::vector<asio::const_buffer> buffers) {
  set_deadline(SteadyClock::now() + m_shared.limits.write);
  auto [ec, n] = co_await asio::async_write(m_socket, buffers, k_tuple);
  clear_deadline();
  co_return !ec;
}

// Reads on while a reply is relayed: bytes of a pipelined request are kept
// (up to a bound), the end of the stream or an error means the client left.
asio::awaitable<void> HttpConnection::wait_gone() {
  while (pending().size() < m_shared.limits.head_bytes.max_bytes) {
    const std::size_t got = co_await receive();
    if (got == 0) {
      co_return;
    }
  }
  asio::steady_timer never(m_socket.get_executor(), SteadyClock::time_point::max());
  co_await never.async_wait(k_tuple); // until the relay ends (cancelled) or cut() closes the socket
}

void HttpConnection::stop_if_idle() {
  if (m_idle) {
    boost::system::error_code ignored;
    m_socket.cancel(ignored);
  }
}

void HttpConnection::cut() {
  boost::system::error_code ignored;
  m_socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  m_socket.close(ignored);
}

void HttpConnection::set_deadline(SteadyClock::time_point deadline) {
  m_deadline = deadline;
  if (deadline < m_timer.expiry()) {
    m_timer.expires_at(deadline); // wakes the watchdog to wait for the nearer deadline
  }
}

void HttpConnection::clear_deadline() {
  m_deadline = SteadyClock::time_point::max(); // the watchdog re-arms lazily when its timer fires
}

// One timer per connection: when the deadline passes, the socket's
// operations are cancelled and whoever waited sees the failure.
asio::awaitable<void> HttpConnection::watchdog() {
  while (!m_done) {
    co_await m_timer.async_wait(k_tuple);
    if (m_done) {
      break;
    }
    if (SteadyClock::now() >= m_deadline) {
      m_expired = true;
      m_deadline = SteadyClock::time_point::max();
      boost::system::error_code ignored;
      m_socket.cancel(ignored);
    }
    m_timer.expires_at(m_deadline);
  }
}

} // namespace claudegate::proxy
