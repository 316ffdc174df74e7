// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/server.hpp"

#include "chunked_body.hpp"
#include "gateway.hpp"
#include "keyring_watch.hpp"
#include "metrics.hpp"
#include "request_log.hpp"
#include "upstream.hpp"

#include "claudegate/base/duration.hpp"
#include "claudegate/base/net.hpp"
#include "claudegate/proxy/anthropic_error.hpp"

#include <fmt/core.h>
#include <httplib.h>

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <limits>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <thread>
#include <unistd.h>

namespace claudegate::proxy {

namespace {

using SteadyClock = std::chrono::steady_clock;

int millis_until(SteadyClock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(left, 0, std::numeric_limits<int>::max()));
}

// Wait up to `timeout_ms` for `events` on `sock`.
bool poll_socket(socket_t sock, short events, int timeout_ms) {
  pollfd fd{sock, events, 0};
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const int ready = ::poll(&fd, 1, millis_until(deadline));
    if (ready >= 0 || errno != EINTR) {
      return ready > 0;
    }
  }
}

void address_of(const sockaddr_storage& addr, std::string& ip, int& port) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  const void* raw = nullptr;
  if (addr.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(addr);
    raw = &v4.sin_addr;
    port = ntohs(v4.sin_port);
  } else {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(addr);
    raw = &v6.sin6_addr;
    port = ntohs(v6.sin6_port);
  }
  ip = inet_ntop(addr.ss_family, raw, text.data(), text.size()) != nullptr ? text.data() : "";
}

// "HTTP/1.1 1xx": an interim head (100 Continue) that must leave at once.
bool is_interim_head(std::string_view data) {
  return data.starts_with("HTTP/1.1 1") || data.starts_with("HTTP/1.0 1");
}

// A response head announcing a chunked body: its chunks (stream events)
// come later, so the head must not wait for them.
bool is_chunked_head(std::string_view data) {
  const std::string_view head = data.substr(0, data.find("\r\n\r\n"));
  std::string lower(head);
  std::ranges::transform(lower, lower.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("transfer-encoding: chunked") != std::string::npos;
}

// `head` (a response head) saying Connection: close instead of Keep-Alive.
std::string closing_head(std::string_view head) {
  std::string out(head);
  const auto keep = out.find("\r\nKeep-Alive: ");
  if (keep != std::string::npos) {
    const auto end = out.find("\r\n", keep + 2);
    out.replace(keep + 2, end - keep - 2, "Connection: close");
  }
  return out;
}

// A client connection with one read buffer for all its requests: httplib
// 0.11.4 makes a new stream per request and so drops pipelined requests.
// The next request's head is read here first, within a deadline and a size
// cap (httplib's own timeout is per read, so a client trickling a byte at a
// time would hold a worker forever), and checked before httplib parses it.
// A chunked body is decoded strictly as httplib reads it (its own parser
// takes bare LFs and chunk data without CRLF) and handed on re-encoded.
class ClientStream final : public httplib::Stream {
public:
  struct Limits {
    int read_ms = 30'000;  // per read, as httplib's read timeout
    int write_ms = 30'000; // per write
    int head_ms = 30'000;  // the whole request head
    HeadLimits head;
    std::uint64_t body = 32 * 1024 * 1024; // a chunked body's limit (httplib bounds Content-Length only)
  };

  ClientStream(socket_t sock, const Limits& limits) : m_sock(sock), m_limits(limits) {}

  bool is_readable() const override {
    return m_offset < m_buffer.size() || poll_socket(m_sock, POLLIN, m_limits.read_ms);
  }
  // As httplib's own stream: writable and the client has not hung up (the
  // stream relay relies on this to notice a client gone mid-stream).
  bool is_writable() const override { return poll_socket(m_sock, POLLOUT, m_limits.write_ms) && peer_open(); }

  // The request's head, then its body: as sent, or re-encoded when chunked.
  ssize_t read(char* ptr, std::size_t size) override {
    if (m_head_left == 0 && m_chunked) {
      return read_chunked(ptr, size);
    }
    const ssize_t n = read_raw(ptr, m_head_left > 0 ? std::min(size, m_head_left) : size);
    if (n > 0) {
      const auto got = static_cast<std::size_t>(n);
      const std::size_t from_head = std::min(got, m_head_left);
      m_head_left -= from_head;
      m_body_left -= std::min<std::uint64_t>(got - from_head, m_body_left);
    }
    return n;
  }

  // A response head is held back until its body is written (or the
  // request is done, see begin_response/flush), so a plain response leaves
  // in one send; interim 1xx heads and chunked (streaming) heads go at once.
  ssize_t write(const char* ptr, std::size_t size) override {
    const std::string_view data(ptr, size);
    if (m_peer_closed) { // as httplib: a client that half-closed has hung up
      return -1;
    }
    std::string closing;
    if (m_hold_head && !is_interim_head(data)) {
      m_hold_head = false;
      if (lost_track()) { // the connection ends after this response: say so
        closing = closing_head(data);
      }
      if (!is_chunked_head(data)) {
        m_held.assign(closing.empty() ? data : closing);
        return static_cast<ssize_t>(size);
      }
    }
    const bool sent = send_parts(m_held, closing.empty() ? data : closing);
    m_held.clear();
    return sent ? static_cast<ssize_t>(size) : -1;
  }

  // The next write that is not an interim 1xx head is a response head to hold.
  void begin_response() { m_hold_head = true; }

  // Send a held response head (a response without a body); false when the client is gone.
  bool flush() {
    m_hold_head = false;
    const bool sent = m_held.empty() || (!m_peer_closed && send_parts(m_held, {}));
    m_held.clear();
    return sent;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (::getpeername(m_sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      address_of(addr, ip, port);
    }
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (::getsockname(m_sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      address_of(addr, ip, port);
    }
  }
  socket_t socket() const override { return m_sock; }

  // Wait up to `timeout_ms` for the next request (a buffered one counts).
  bool wait_request(int timeout_ms) const {
    return m_offset < m_buffer.size() || poll_socket(m_sock, POLLIN, timeout_ms);
  }

  // Buffer and check the next request head: nothing when it is ready for
  // httplib, else the rejection to send (none when the client just left).
  std::optional<std::optional<Rejection>> next_head() {
    auto head_size = read_head();
    if (!head_size) {
      return head_size.error();
    }
    auto checked = check_request_head(pending().substr(0, *head_size), m_limits.head);
    if (!checked) {
      return std::optional<Rejection>(checked.error());
    }
    m_buffer.replace(m_offset, *head_size, *checked);
    const BodyFraming framing = body_framing(*checked);
    m_head_left = checked->size();
    m_body_left = framing.chunked ? 0 : framing.length;
    m_chunked.reset();
    if (framing.chunked) {
      m_chunked.emplace(m_limits.body, m_limits.head.max_line);
    }
    m_decoded.clear();
    m_decoded_offset = 0;
    m_refusal.reset();
    return std::nullopt;
  }

  // True when httplib gave up on a request (a read failed or timed out, or
  // it answered without reading the whole head or body, as for a refused
  // Expect: 100-continue): whatever follows on this connection is no
  // request, so it must end.
  bool lost_track() const {
    const bool body_unread =
        m_body_left > 0 || (m_chunked && (!m_chunked->done() || m_decoded_offset < m_decoded.size()));
    return m_broken || m_head_left > 0 || body_unread;
  }

  // Why the chunked body of the current request was refused, if it was.
  const std::optional<Rejection>& body_refusal() const { return m_refusal; }

private:
  // False once the client closed its end: readable, yet nothing to peek.
  bool peer_open() const {
    if (!poll_socket(m_sock, POLLIN, 0)) {
      return true;
    }
    char byte = 0;
    return ::recv(m_sock, &byte, 1, MSG_PEEK) > 0;
  }

  std::string_view pending() const { return std::string_view(m_buffer).substr(m_offset); }

  // Up to `size` buffered bytes, receiving more (within the read timeout) when none are.
  ssize_t read_raw(char* ptr, std::size_t size) {
    if (m_offset == m_buffer.size()) {
      const ssize_t got = fill(SteadyClock::now() + std::chrono::milliseconds(m_limits.read_ms));
      if (got <= 0) {
        m_broken = true;
        return got;
      }
    }
    const std::size_t n = std::min(size, m_buffer.size() - m_offset);
    std::memcpy(ptr, m_buffer.data() + m_offset, n);
    m_offset += n;
    return static_cast<ssize_t>(n);
  }

  // Decode the chunked body as far as needed to hand httplib `size` bytes
  // of it re-encoded; -1 (and the refusal kept) when it breaks the rules.
  ssize_t read_chunked(char* ptr, std::size_t size) {
    while (m_decoded_offset == m_decoded.size()) {
      if (m_chunked->done()) {
        return 0;
      }
      m_decoded.clear();
      m_decoded_offset = 0;
      if (m_offset == m_buffer.size()
          && fill(SteadyClock::now() + std::chrono::milliseconds(m_limits.read_ms)) <= 0) {
        m_broken = true;
        return -1;
      }
      auto used = m_chunked->feed(pending(), m_decoded);
      if (!used) {
        m_refusal = used.error();
        m_broken = true;
        return -1;
      }
      m_offset += *used;
    }
    const std::size_t n = std::min(size, m_decoded.size() - m_decoded_offset);
    std::memcpy(ptr, m_decoded.data() + m_decoded_offset, n);
    m_decoded_offset += n;
    return static_cast<ssize_t>(n);
  }

  // Receive what is there (waiting until `deadline`) onto the buffer: the
  // byte count, 0 when the client closed, -1 on timeout or error.
  ssize_t fill(SteadyClock::time_point deadline) {
    if (m_offset == m_buffer.size()) {
      m_buffer.clear();
      m_offset = 0;
    }
    std::array<char, 16 * 1024> chunk{};
    // Try first and wait only when nothing is there: most reads follow a poll
    // that already saw data.
    ssize_t n = receive_now(chunk.data(), chunk.size());
    if (n < 0 && errno == EAGAIN) {
      if (!poll_socket(m_sock, POLLIN, millis_until(deadline))) {
        return -1;
      }
      n = receive_now(chunk.data(), chunk.size());
    }
    if (n > 0) {
      m_buffer.append(chunk.data(), static_cast<std::size_t>(n));
    }
    m_peer_closed = m_peer_closed || n == 0;
    return n;
  }

  ssize_t receive_now(char* data, std::size_t size) const {
    ssize_t n = -1;
    do {
      n = ::recv(m_sock, data, size, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  // Send `first` then `second` in as few sends as the socket takes, waiting
  // up to the write timeout whenever it is full; false on error.
  bool send_parts(std::string_view first, std::string_view second) const {
    std::array<iovec, 2> parts{iovec{const_cast<char*>(first.data()), first.size()},
                               iovec{const_cast<char*>(second.data()), second.size()}};
    std::size_t index = first.empty() ? 1 : 0;
    while (index < parts.size() && parts[index].iov_len > 0) {
      msghdr message{};
      message.msg_iov = &parts[index];
      message.msg_iovlen = parts.size() - index;
      const ssize_t n = ::sendmsg(m_sock, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR || (errno == EAGAIN && poll_socket(m_sock, POLLOUT, m_limits.write_ms))) {
          continue;
        }
        return false;
      }
      index = advance(parts, index, static_cast<std::size_t>(n));
    }
    return true;
  }

  // Consume `sent` bytes from parts[index…]: the index of the first part with bytes left.
  static std::size_t advance(std::array<iovec, 2>& parts, std::size_t index, std::size_t sent) {
    while (index < parts.size() && sent >= parts[index].iov_len) {
      sent -= parts[index].iov_len;
      parts[index].iov_len = 0;
      ++index;
    }
    if (index < parts.size()) {
      parts[index].iov_base = static_cast<char*>(parts[index].iov_base) + sent;
      parts[index].iov_len -= sent;
    }
    return index;
  }

  // The size of the buffered head once its blank line is in (a bare-LF one
  // too, for check_request_head to refuse), or why it never will be.
  std::expected<std::size_t, std::optional<Rejection>> read_head() {
    const auto deadline = SteadyClock::now() + std::chrono::milliseconds(m_limits.head_ms);
    for (;;) {
      const std::string_view head = pending();
      if (const auto end = head.find("\r\n\r\n"); end != std::string_view::npos) {
        return end + 4;
      }
      if (const auto end = head.find("\n\n"); end != std::string_view::npos) {
        return end + 2;
      }
      if (auto too_big = oversized(head)) {
        return std::unexpected(too_big);
      }
      if (const ssize_t got = fill(deadline); got <= 0) {
        return std::unexpected(got < 0 ? timed_out() : std::nullopt);
      }
    }
  }

  std::optional<Rejection> oversized(std::string_view head) const {
    const auto& limits = m_limits.head;
    if (head.find('\n') == std::string_view::npos && head.size() > limits.max_line) {
      return Rejection{414, "request_too_large",
                       fmt::format("the request line is longer than {} bytes", limits.max_line), std::nullopt,
                       false};
    }
    if (head.size() > limits.max_bytes) {
      return Rejection{431, "request_too_large",
                       fmt::format("request headers are larger than {} bytes", limits.max_bytes),
                       std::nullopt, false};
    }
    return std::nullopt;
  }

  // A 408 when the head deadline passed with part of a head in; nothing
  // when the client sent nothing.
  std::optional<Rejection> timed_out() const {
    if (pending().empty()) {
      return std::nullopt;
    }
    return Rejection{408, "timeout_error",
                     fmt::format("the request headers did not arrive within {} s", m_limits.head_ms / 1000),
                     std::nullopt, false};
  }

  socket_t m_sock;
  Limits m_limits;
  std::string m_buffer;
  std::size_t m_offset = 0;
  std::size_t m_head_left = 0;   // bytes of the current head httplib has not read
  std::uint64_t m_body_left = 0; // bytes of its Content-Length body not read
  std::optional<ChunkedBody> m_chunked;
  std::string m_decoded; // the chunked body re-encoded, for httplib to read
  std::size_t m_decoded_offset = 0;
  std::optional<Rejection> m_refusal;
  bool m_broken = false;
  bool m_hold_head = false;
  bool m_peer_closed = false; // a read saw the client's end of stream
  std::string m_held;         // a response head waiting for its body
};

// The connection the calling worker thread is serving, for the error
// handler to learn why its body was refused (httplib only knows "400").
thread_local const ClientStream* t_client = nullptr;

class ServingClient {
public:
  explicit ServingClient(const ClientStream& stream) { t_client = &stream; }
  ~ServingClient() { t_client = nullptr; }
  ServingClient(const ServingClient&) = delete;
  ServingClient& operator=(const ServingClient&) = delete;
};

std::optional<Rejection> body_refusal_here() {
  return t_client != nullptr ? t_client->body_refusal() : std::nullopt;
}

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

// Close after a rejection: stop sending, then read what the client still
// sends for a moment, so closing with unread bytes does not reset the
// connection before the client has read the answer.
void linger_close(socket_t sock) {
  ::shutdown(sock, SHUT_WR);
  std::array<char, 16 * 1024> sink{};
  const auto deadline = SteadyClock::now() + std::chrono::seconds(2);
  std::size_t drained = 0;
  while (drained < 4 * 1024 * 1024 && poll_socket(sock, POLLIN, millis_until(deadline))) {
    const ssize_t n = ::recv(sock, sink.data(), sink.size(), 0);
    if (n <= 0) {
      break;
    }
    drained += static_cast<std::size_t>(n);
  }
  ::close(sock);
}

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

  // Read timeouts and head bounds for every connection, and what answers a
  // head refused before httplib saw it (returns the request id).
  void guard_heads(ClientStream::Limits limits, std::function<std::string(const Rejection&)> on_refused) {
    m_limits = limits;
    m_on_refused = std::move(on_refused);
  }

private:
  // httplib's own per-connection loop (a private virtual in 0.11.4, its only
  // hook there), with one ClientStream for the whole connection.
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
    // A signal that came after the watcher stopped asks to stop a server that
    // has already stopped: consume it, or unblocking it would kill the
    // process before it reports its clean exit (seen under load in t_sigterm).
    const timespec now{0, 0};
    while (sigtimedwait(&m_set, nullptr, &now) > 0) {
    }
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
  server.Get("/healthz", bind_route<&Gateway::healthz>(gateway));
  server.Get("/metrics", bind_route<&Gateway::metrics>(gateway));
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
  server.guard_heads(stream_limits(options), refusal_log(services, resources));
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
