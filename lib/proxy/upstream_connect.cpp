// SPDX-License-Identifier: Apache-2.0
#include "upstream_connect.hpp"

#include "claudegate/base/tls_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <chrono>

namespace claudegate::proxy {

namespace {

using tcp = asio::ip::tcp;
constexpr auto k_connect_use = asio::as_tuple(asio::use_awaitable);

std::string default_port(bool tls) {
  return tls ? "443" : "80";
}

// host and port of an authority: "h", "h:p", "[v6]", "[v6]:p".
std::pair<std::string, std::string> split_authority(std::string_view authority, bool tls) {
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    const auto rest = close == std::string_view::npos ? std::string_view() : authority.substr(close + 1);
    return {std::string(authority.substr(1, close - 1)),
            rest.starts_with(':') ? std::string(rest.substr(1)) : default_port(tls)};
  }
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) {
    return {std::string(authority), default_port(tls)};
  }
  return {std::string(authority.substr(0, colon)), std::string(authority.substr(colon + 1))};
}

std::string endpoint_name(const Origin& origin) {
  return origin.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", origin.host, origin.port)
                                                    : fmt::format("{}:{}", origin.host, origin.port);
}

Exchange connect_failure(const Origin& origin, const boost::system::error_code& ec, std::int64_t timeout) {
  if (ec == asio::error::operation_aborted) {
    return {UpstreamFailure::canceled, "canceled"};
  }
  if (ec == beast::error::timeout) {
    return {UpstreamFailure::timeout, fmt::format("upstream {} did not accept a connection in time "
                                                  "(connect timeout {} s)",
                                                  endpoint_name(origin), timeout)};
  }
  return {UpstreamFailure::connect,
          fmt::format("cannot connect to upstream {} ({})", endpoint_name(origin), ec.message())};
}

Exchange tls_failure(const Origin& origin, const SSL* ssl, const boost::system::error_code& ec,
                     std::int64_t timeout) {
  if (ec == beast::error::timeout || ec == asio::error::operation_aborted) {
    return connect_failure(origin, ec, timeout);
  }
  const std::string why = tls::verify_failure(ssl);
  if (!why.empty()) {
    return {UpstreamFailure::connect,
            fmt::format("TLS verification of upstream {} failed ({})", endpoint_name(origin), why)};
  }
  return {UpstreamFailure::connect,
          fmt::format("TLS handshake with upstream {} failed ({})", endpoint_name(origin), ec.message())};
}

asio::awaitable<boost::system::error_code> handshake(Connection& connection, const Origin& origin,
                                                     asio::ssl::context& context) {
  auto& stream = connection.start_tls(context);
  if (!tls::expect_peer(stream.native_handle(), origin.host)) {
    co_return asio::error::invalid_argument;
  }
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, k_connect_use);
  co_return ec;
}

} // namespace

void Connection::close() {
  boost::system::error_code ignored;
  tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp().close();
}

Result<Origin> parse_origin(const std::string& url) {
  const bool tls = url.starts_with("https://");
  if (!tls && !url.starts_with("http://")) {
    return fail(Errc::config, fmt::format("--upstream '{}' must start with https:// or http://", url));
  }
  const std::size_t start = tls ? 8 : 7;
  const std::size_t slash = url.find('/', start);
  const std::string authority = url.substr(start, slash == std::string::npos ? slash : slash - start);
  auto [host, port] = split_authority(authority, tls);
  if (host.empty() || port.empty()) {
    return fail(Errc::config, fmt::format("--upstream '{}' has no host", url));
  }
  Origin origin{tls, std::move(host), std::move(port), authority,
                slash == std::string::npos ? "" : url.substr(slash)};
  while (origin.prefix.ends_with('/')) {
    origin.prefix.pop_back();
  }
  return origin;
}

asio::awaitable<Connected> open_connection(const Origin& origin, asio::ssl::context* tls,
                                           std::int64_t timeout) {
  const auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  auto [resolve_ec, endpoints] = co_await resolver.async_resolve(origin.host, origin.port, k_connect_use);
  if (resolve_ec == asio::error::operation_aborted) {
    co_return std::unexpected(connect_failure(origin, resolve_ec, timeout));
  }
  if (resolve_ec) {
    co_return std::unexpected(
        Exchange{UpstreamFailure::connect,
                 fmt::format("cannot resolve upstream host {} ({})", origin.host, resolve_ec.message())});
  }
  auto connection = std::make_unique<Connection>(executor);
  connection->tcp().expires_after(std::chrono::seconds(timeout));
  auto [connect_ec, endpoint] = co_await connection->tcp().async_connect(endpoints, k_connect_use);
  if (connect_ec) {
    co_return std::unexpected(connect_failure(origin, connect_ec, timeout));
  }
  // The head and the body leave in one write, but a small request must not
  // wait for a delayed ACK either way.
  connection->tcp().socket().set_option(tcp::no_delay(true), connect_ec);
  if (tls != nullptr) {
    if (const auto ec = co_await handshake(*connection, origin, *tls)) {
      co_return std::unexpected(tls_failure(origin, connection->ssl(), ec, timeout));
    }
  }
  connection->tcp().expires_never();
  co_return connection;
}

} // namespace claudegate::proxy
