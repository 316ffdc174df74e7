// SPDX-License-Identifier: Apache-2.0
#include "upstream.hpp"
#include "upstream_abort.hpp"

#include "claudegate/proxy/anthropic_error.hpp"
#include "claudegate/proxy/message_request.hpp"
#include "claudegate/proxy/mock_claude.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <algorithm>

// The built-in mock Claude behind the Upstream interface: count_tokens,
// models, a model by id, and messages as JSON or SSE events, delivered
// through the sink like a real reply (each event its own chunk).
namespace claudegate::proxy {

namespace {

const Exchange k_mock_canceled{UpstreamFailure::canceled, "canceled"};

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

http::fields reply_headers(std::string_view content_type, const std::string& request_id) {
  http::fields headers;
  headers.set(http::field::content_type, content_type);
  headers.set("request-id", request_id);
  return headers;
}

MockReply model_reply(std::string_view id, const std::string& request_id) {
  const auto& ids = mock_model_ids();
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
    return {404, "application/json", error_body("not_found_error", fmt::format("model: {}", id), request_id)};
  }
  return {200, "application/json", mock_model_body(id)};
}

MockReply reply_for(std::string_view path, const Outbound& out, const std::string& request_id) {
  if (path == "/v1/messages") {
    return mock_message(out.body, request_id);
  }
  if (path == "/v1/messages/count_tokens") {
    return mock_count_tokens(out.body);
  }
  if (path == "/v1/models") {
    return {200, "application/json", mock_models_body(mock_model_ids())};
  }
  if (path.starts_with("/v1/models/")) {
    return model_reply(path.substr(11), request_id);
  }
  return {404, "application/json", error_body("not_found_error", "Not found", request_id)};
}

class MockUpstream final : public Upstream {
public:
  explicit MockUpstream(RandomSource& random) : m_random(random) {}

  asio::awaitable<Exchange> exchange(const Outbound& out, UpstreamSink& sink) override {
    return canceled_as_result(reply(out, sink, new_request_id(m_random)));
  }

private:
  static asio::awaitable<Exchange> reply(const Outbound& out, UpstreamSink& sink, std::string request_id) {
    const std::string_view path = path_of(out.target);
    if (path == "/v1/messages" && out.stream) {
      co_return co_await stream_events(out, sink, request_id);
    }
    const MockReply reply = reply_for(path, out, request_id);
    co_await yield();
    const UpstreamHead head{reply.status, reply_headers(reply.content_type, request_id)};
    if (!co_await sink.head(head) || !co_await sink.data(reply.body)) {
      co_return k_mock_canceled;
    }
    co_return Exchange{};
  }

  static asio::awaitable<Exchange> stream_events(const Outbound& out, UpstreamSink& sink,
                                                 const std::string& request_id) {
    co_await yield();
    // Named, not a temporary in the co_await expression (GCC 12 mishandles those).
    const UpstreamHead head{200, reply_headers("text/event-stream; charset=utf-8", request_id)};
    if (!co_await sink.head(head)) {
      co_return k_mock_canceled;
    }
    for (const auto& event : mock_message_events(out.body, request_id)) {
      co_await yield(); // each event arrives on its own, as from a network
      if (!co_await sink.data(event)) {
        co_return k_mock_canceled;
      }
    }
    co_return Exchange{};
  }

  // Let the io thread run others (and a cancellation land) between deliveries.
  static asio::awaitable<void> yield() {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  }

  RandomSource& m_random;
};

} // namespace

std::unique_ptr<Upstream> mock_upstream(RandomSource& random) {
  return std::make_unique<MockUpstream>(random);
}

} // namespace claudegate::proxy
