// SPDX-License-Identifier: Apache-2.0
#include "jwks_http.hpp"

#include "claudegate/base/tls_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <chrono>

namespace claudegate::jwks_remote {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
constexpr auto k_get_use = asio::as_tuple(asio::use_awaitable);

GetReply get_failed(GetFailure failure, std::string detail = {}) {
  GetReply reply;
  reply.failure = failure;
  reply.detail = std::move(detail);
  return reply;
}

// Write the GET on `stream` and read the reply within the limits.
template <typename Stream> asio::awaitable<GetReply> exchange(Stream& stream, const GetRequest& request) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  http::request<http::empty_body> get{http::verb::get, request.target, 11};
  get.set(http::field::host, request.authority);
  get.set(http::field::accept, "application/json");
  get.set(http::field::connection, "close");
  tcp_layer.expires_after(std::chrono::seconds(request.timeout));
  if (auto [ec, n] = co_await http::async_write(stream, get, k_get_use); ec) {
    co_return get_failed(ec == beast::error::timeout ? GetFailure::read_failed : GetFailure::refused);
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(request.max_bytes);
  tcp_layer.expires_after(std::chrono::seconds(request.timeout));
  if (auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, k_get_use); ec) {
    // A Content-Length over the cap fails here already.
    co_return get_failed(ec == http::error::body_limit ? GetFailure::too_big : GetFailure::read_failed);
  }
  const auto& head = parser.get();
  GetReply reply;
  reply.status = static_cast<int>(head.result_int());
  reply.cache_control = std::string(head[http::field::cache_control]);
  reply.location = std::string(head[http::field::location]);
  if (reply.status != 200) {
    co_return reply;
  }
  const auto deadline = SteadyClock::now() + std::chrono::seconds(2 * request.timeout);
  while (!parser.is_done()) {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - SteadyClock::now());
    tcp_layer.expires_after(std::min<std::chrono::nanoseconds>(left, std::chrono::seconds(request.timeout)));
    auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, k_get_use);
    if (ec == http::error::body_limit) {
      co_return get_failed(GetFailure::too_big);
    }
    if (ec) {
      co_return get_failed(SteadyClock::now() >= deadline ? GetFailure::too_slow : GetFailure::read_failed);
    }
  }
  reply.body = std::move(parser.get().body());
  co_return reply;
}

asio::awaitable<GetReply> tls_exchange(beast::tcp_stream tcp_stream, const GetRequest& request) {
  auto context = tls::client_context();
  if (!context) {
    co_return get_failed(GetFailure::tls_setup, context.error().message);
  }
  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), **context);
  if (!tls::expect_peer(stream.native_handle(), request.host)) {
    co_return get_failed(GetFailure::tls_setup);
  }
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(request.timeout));
  if (auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, k_get_use); ec) {
    const std::string why = tls::verify_failure(stream.native_handle());
    co_return why.empty() ? get_failed(GetFailure::tls_handshake, ec.message())
                          : get_failed(GetFailure::tls_verify, why);
  }
  co_return co_await exchange(stream, request);
}

asio::awaitable<GetReply> get(const GetRequest& request) {
  const auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  auto [resolve_ec, endpoints] = co_await resolver.async_resolve(request.host, request.port, k_get_use);
  if (resolve_ec) {
    co_return get_failed(GetFailure::refused, resolve_ec.message());
  }
  beast::tcp_stream stream(executor);
  stream.expires_after(std::chrono::seconds(request.timeout));
  if (auto [ec, endpoint] = co_await stream.async_connect(endpoints, k_get_use); ec) {
    co_return get_failed(ec == beast::error::timeout ? GetFailure::connect_timeout : GetFailure::refused,
                         ec.message());
  }
  if (request.tls) {
    co_return co_await tls_exchange(std::move(stream), request);
  }
  co_return co_await exchange(stream, request);
}

} // namespace

GetReply http_get(const GetRequest& request) {
  asio::io_context context;
  GetReply reply = get_failed(GetFailure::read_failed);
  asio::co_spawn(context, get(request), [&reply](std::exception_ptr error, GetReply done) {
    if (!error) {
      reply = std::move(done);
    }
  });
  context.run();
  return reply;
}

} // namespace claudegate::jwks_remote
