// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "upstream.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>

// One upstream connection (plain TCP or TLS over it) and how it is opened.
namespace claudegate::proxy {

namespace beast = boost::beast;

// Where an http_upstream sends: from `scheme://host[:port][/prefix]`.
struct Origin {
  bool tls = false;
  std::string host;      // without brackets
  std::string port;      // "443" / "80" when absent
  std::string authority; // the Host header: host[:port] as in the URL
  std::string prefix;    // path prefix without a trailing slash
};

// The origin of `url`; fails with config for a scheme other than http(s) or no host.
Result<Origin> parse_origin(const std::string& url);

// A connected socket, TLS-wrapped when the origin is https, and the bytes
// read past the last response (kept for the next one on this connection).
class Connection {
public:
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  explicit Connection(const asio::any_io_executor& executor) : m_tcp(executor) {}

  beast::tcp_stream& tcp() { return m_tls ? beast::get_lowest_layer(*m_tls) : m_tcp; }
  TlsStream& start_tls(asio::ssl::context& context) { return m_tls.emplace(std::move(m_tcp), context); }
  SSL* ssl() { return m_tls ? m_tls->native_handle() : nullptr; }
  beast::flat_buffer& buffer() { return m_buffer; }
  // Where a response body is read to, a piece at a time: made once per
  // connection (never zeroed), so a request allocates no body buffer.
  std::span<char> body_chunk() {
    if (!m_chunk) {
      m_chunk = std::make_unique_for_overwrite<char[]>(k_body_chunk);
    }
    return {m_chunk.get(), k_body_chunk};
  }
  // Close the socket at once (no TLS close_notify, nothing waited for).
  void close();

  // Call `f` with the stream to read and write (both overloads return the same type).
  template <typename F> auto with_stream(F&& f) { return m_tls ? f(*m_tls) : f(m_tcp); }

private:
  beast::tcp_stream m_tcp;
  std::optional<TlsStream> m_tls;
  beast::flat_buffer m_buffer{64 * 1024};
  static constexpr std::size_t k_body_chunk = 16 * 1024;
  std::unique_ptr<char[]> m_chunk;
};

using Connected = std::expected<std::unique_ptr<Connection>, Exchange>;

// Resolve, connect (TCP_NODELAY) and, for https, handshake with SNI and the
// peer's name verified, all within `timeout` seconds. Failures are connect
// (named: refused, unresolvable, TLS verification) or timeout.
asio::awaitable<Connected> open_connection(const Origin& origin, asio::ssl::context* tls,
                                           std::int64_t timeout);

} // namespace claudegate::proxy
