// SPDX-License-Identifier: Apache-2.0
#include "upstream_http.hpp"

#include "upstream_abort.hpp"
#include "upstream_pool.hpp"

#include "claudegate/base/tls_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/core.h>

#include <array>
#include <chrono>

// An exchange: take an idle connection of this io_context's pool (or open
// one), write the request, read the head, then the body chunk by chunk into
// a fixed buffer, each chunk awaited by the sink before the next read. The
// connection goes back to the pool only after a complete keep-alive reply.
//
// Retry rule (as nginx and Envoy do for a reused keep-alive connection): a
// pooled connection whose write fails, or whose first read of the response
// fails before a single byte arrived (the server closed it while idle), is
// replaced by a fresh connection and the request sent once more. Never after
// a byte of the response, never on a timeout or cancellation, never on a
// fresh connection: then the server may have acted on the request.
namespace claudegate::proxy {

namespace {

using UpstreamRequest = http::request<http::span_body<const char>>;
using ReplyParser = http::response_parser<http::buffer_body>;
constexpr auto k_http_use = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t k_header_limit = 64 * 1024;
const Exchange k_canceled{UpstreamFailure::canceled, "canceled"};

// How one attempt on one connection ended.
struct Attempt {
  Exchange exchange;
  bool stale = false; // nothing of a response arrived on a reused connection: retry on a fresh one
  bool keep = false;  // complete keep-alive response: the connection may serve another
};

bool was_canceled(const boost::system::error_code& ec) {
  return ec == asio::error::operation_aborted;
}

class HttpUpstream final : public Upstream {
public:
  HttpUpstream(UpstreamSettings settings, Origin origin, std::shared_ptr<asio::ssl::context> tls)
      : m_settings(std::move(settings)), m_origin(std::move(origin)), m_tls(std::move(tls)) {}

  asio::awaitable<Exchange> exchange(const Outbound& out, UpstreamSink& sink) override {
    return canceled_as_result(run(out, sink));
  }

private:
  asio::awaitable<Exchange> run(const Outbound& out, UpstreamSink& sink) {
    auto& pools = pools_of(co_await asio::this_coro::executor);
    const UpstreamRequest request = request_for(out);
    std::unique_ptr<Connection> connection = pools.take(m_key);
    const bool reused = connection != nullptr;
    Attempt attempt;
    if (reused) {
      attempt = co_await attempt_on(*connection, request, out, sink, true);
    }
    if (!reused || attempt.stale) {
      auto fresh = co_await open_connection(m_origin, m_tls.get(), m_settings.connect_timeout);
      if (!fresh) {
        co_return fresh.error();
      }
      connection = std::move(*fresh);
      attempt = co_await attempt_on(*connection, request, out, sink, false);
    }
    if (attempt.keep) {
      pools.give(m_key, std::move(connection));
    }
    co_return attempt.exchange; // a connection not kept is closed here
  }

  UpstreamRequest request_for(const Outbound& out) const {
    UpstreamRequest request;
    request.method_string(out.method);
    request.target(m_origin.prefix + out.target);
    for (const auto& field : out.headers) {
      request.insert(field.name_string(), field.value());
    }
    request.set(http::field::host, m_origin.authority);
    request.set("x-api-key", m_settings.api_key);
    // Usage is read from the body as it passes: it must arrive unencoded.
    request.set(http::field::accept_encoding, "identity");
    request.body() = {out.body.data(), out.body.size()};
    request.prepare_payload();
    return request;
  }

  asio::awaitable<Attempt> attempt_on(Connection& connection, const UpstreamRequest& request,
                                      const Outbound& out, UpstreamSink& sink, bool reused) {
    connection.tcp().expires_after(std::chrono::seconds(m_settings.read_timeout));
    auto [write_ec, written] = co_await connection.with_stream(
        [&request](auto& stream) { return http::async_write(stream, request, k_http_use); });
    if (write_ec) {
      co_return failed(write_ec, reused, "failed while the request was sent");
    }
    ReplyParser parser;
    parser.body_limit(boost::none); // relayed as it arrives, never held whole
    parser.header_limit(k_header_limit);
    parser.skip(out.method == "HEAD");
    connection.tcp().expires_after(std::chrono::seconds(m_settings.read_timeout));
    auto [head_ec, head_size] = co_await connection.with_stream([&](auto& stream) {
      return http::async_read_header(stream, connection.buffer(), parser, k_http_use);
    });
    if (head_ec) {
      const bool nothing = !parser.got_some() && connection.buffer().size() == 0;
      co_return failed(head_ec, reused && nothing, "sent no valid response head");
    }
    co_return co_await relay(connection, parser, sink);
  }

  // Deliver the head and then the body, chunk by chunk, to `sink`.
  asio::awaitable<Attempt> relay(Connection& connection, ReplyParser& parser, UpstreamSink& sink) {
    const auto& message = parser.get();
    // Named, not a temporary in the co_await expression (GCC 12 mishandles those).
    const UpstreamHead head{static_cast<int>(message.result_int()),
                            static_cast<const http::fields&>(message)};
    if (!co_await sink.head(head)) {
      co_return Attempt{k_canceled};
    }
    const std::span<char> chunk = connection.body_chunk();
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      connection.tcp().expires_after(std::chrono::seconds(m_settings.read_timeout));
      auto [ec, size] = co_await connection.with_stream([&](auto& stream) {
        return http::async_read_some(stream, connection.buffer(), parser, k_http_use);
      });
      if (ec && ec != http::error::need_buffer) {
        co_return failed(ec, false, "broke off the response");
      }
      const std::size_t got = chunk.size() - parser.get().body().size;
      const std::string_view data(chunk.data(), got);
      if (got > 0 && !co_await sink.data(data)) {
        co_return Attempt{k_canceled};
      }
    }
    connection.tcp().expires_never();
    // Bytes past the reply (a misbehaving server) would be read as the next one: not kept then.
    co_return Attempt{{}, false, parser.keep_alive() && connection.buffer().size() == 0};
  }

  Attempt failed(const boost::system::error_code& ec, bool retry, std::string_view what) const {
    if (was_canceled(ec)) {
      return {k_canceled};
    }
    if (ec == beast::error::timeout) {
      return {{UpstreamFailure::timeout,
               fmt::format("upstream did not answer in time (read timeout {} s)", m_settings.read_timeout)}};
    }
    return {{UpstreamFailure::connect,
             fmt::format("upstream request failed: {} {} ({})", m_origin.authority, what, ec.message())},
            retry};
  }

  UpstreamSettings m_settings;
  Origin m_origin;
  std::shared_ptr<asio::ssl::context> m_tls; // null for http://
  std::uint64_t m_key = new_pool_key();
};

} // namespace

Result<std::unique_ptr<Upstream>> http_upstream(const UpstreamSettings& settings,
                                                std::shared_ptr<asio::ssl::context> tls) {
  auto origin = parse_origin(settings.url);
  if (!origin) {
    return propagate(origin);
  }
  if (!origin->tls) {
    tls.reset();
  } else if (!tls) {
    auto context = tls::client_context();
    if (!context) {
      return propagate(context);
    }
    tls = std::move(*context);
  }
  return std::make_unique<HttpUpstream>(settings, std::move(*origin), std::move(tls));
}

Result<std::unique_ptr<Upstream>> http_upstream(const UpstreamSettings& settings) {
  return http_upstream(settings, nullptr);
}

} // namespace claudegate::proxy
