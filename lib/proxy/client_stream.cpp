// SPDX-License-Identifier: Apache-2.0
#include "client_stream.hpp"
#include "claudegate/base/text.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <limits>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
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
  return text::lower(head).find("transfer-encoding: chunked") != std::string::npos;
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

// The connection the calling worker thread is serving, for the error
// handler to learn why its body was refused (httplib only knows "400").
thread_local const ClientStream* t_client = nullptr;

} // namespace

bool ClientStream::is_readable() const {
  return m_offset < m_buffer.size() || poll_socket(m_sock, POLLIN, m_limits.read_ms);
}

bool ClientStream::is_writable() const {
  return poll_socket(m_sock, POLLOUT, m_limits.write_ms) && peer_open();
}

ssize_t ClientStream::read(char* ptr, std::size_t size) {
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

ssize_t ClientStream::write(const char* ptr, std::size_t size) {
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

bool ClientStream::flush() {
  m_hold_head = false;
  const bool sent = m_held.empty() || (!m_peer_closed && send_parts(m_held, {}));
  m_held.clear();
  return sent;
}

void ClientStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getpeername(m_sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    address_of(addr, ip, port);
  }
}

void ClientStream::get_local_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(m_sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    address_of(addr, ip, port);
  }
}

bool ClientStream::wait_request(int timeout_ms) const {
  return m_offset < m_buffer.size() || poll_socket(m_sock, POLLIN, timeout_ms);
}

std::optional<std::optional<Rejection>> ClientStream::next_head() {
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

bool ClientStream::lost_track() const {
  const bool body_unread =
      m_body_left > 0 || (m_chunked && (!m_chunked->done() || m_decoded_offset < m_decoded.size()));
  return m_broken || m_head_left > 0 || body_unread;
}

bool ClientStream::peer_open() const {
  if (!poll_socket(m_sock, POLLIN, 0)) {
    return true;
  }
  char byte = 0;
  return ::recv(m_sock, &byte, 1, MSG_PEEK) > 0;
}

ssize_t ClientStream::read_raw(char* ptr, std::size_t size) {
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

ssize_t ClientStream::read_chunked(char* ptr, std::size_t size) {
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

ssize_t ClientStream::fill(SteadyClock::time_point deadline) {
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

ssize_t ClientStream::receive_now(char* data, std::size_t size) const {
  ssize_t n = -1;
  do {
    n = ::recv(m_sock, data, size, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return n;
}

bool ClientStream::send_parts(std::string_view first, std::string_view second) const {
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

std::size_t ClientStream::advance(std::array<iovec, 2>& parts, std::size_t index, std::size_t sent) {
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

std::expected<std::size_t, std::optional<Rejection>> ClientStream::read_head() {
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

std::optional<Rejection> ClientStream::oversized(std::string_view head) const {
  const auto& limits = m_limits.head;
  if (head.find('\n') == std::string_view::npos && head.size() > limits.max_line) {
    return Rejection{414, "request_too_large",
                     fmt::format("the request line is longer than {} bytes", limits.max_line), std::nullopt,
                     false};
  }
  if (head.size() > limits.max_bytes) {
    return Rejection{431, "request_too_large",
                     fmt::format("request headers are larger than {} bytes", limits.max_bytes), std::nullopt,
                     false};
  }
  return std::nullopt;
}

std::optional<Rejection> ClientStream::timed_out() const {
  if (pending().empty()) {
    return std::nullopt;
  }
  return Rejection{408, "timeout_error",
                   fmt::format("the request headers did not arrive within {} s", m_limits.head_ms / 1000),
                   std::nullopt, false};
}
ServingClient::ServingClient(const ClientStream& stream) {
  t_client = &stream;
}

ServingClient::~ServingClient() {
  t_client = nullptr;
}

std::optional<Rejection> body_refusal_here() {
  return t_client != nullptr ? t_client->body_refusal() : std::nullopt;
}

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

} // namespace claudegate::proxy
