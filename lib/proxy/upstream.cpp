// SPDX-License-Identifier: Apache-2.0
#include "upstream.hpp"

#include "claudegate/proxy/anthropic_error.hpp"
#include "claudegate/proxy/message_request.hpp"
#include "claudegate/proxy/mock_claude.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <vector>

namespace claudegate::proxy {

namespace {

const Exchange k_canceled{UpstreamFailure::canceled, "canceled"};

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// The mock reply for `out`: count_tokens, models, or a message (JSON or SSE events).
class MockUpstream final : public Upstream {
public:
  explicit MockUpstream(RandomSource& random) : m_random(random) {}

  asio::awaitable<Exchange> exchange(const Outbound& out, UpstreamSink& sink) override {
    const std::string request_id = new_request_id(m_random);
    const std::string_view path = path_of(out.target);
    if (path == "/v1/messages" && out.stream) {
      co_return co_await stream_events(out, request_id, sink);
    }
    MockReply reply = reply_for(path, out, request_id);
    UpstreamHead head{reply.status, {}};
    head.headers.set(http::field::content_type, reply.content_type);
    head.headers.set(http::field::content_length, std::to_string(reply.body.size()));
    head.headers.set("request-id", request_id);
    // (GCC 12 miscompiles co_await inside && or ||: one co_await a statement.)
    if (const bool wanted = co_await sink.head(head); !wanted) {
      co_return k_canceled;
    }
    if (const bool taken = co_await sink.data(reply.body); !taken) {
      co_return k_canceled;
    }
    co_return Exchange{};
  }

private:
  static MockReply reply_for(std::string_view path, const Outbound& out, const std::string& request_id) {
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

  static MockReply model_reply(std::string_view id, const std::string& request_id) {
    const auto& ids = mock_model_ids();
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
      return {404, "application/json",
              error_body("not_found_error", fmt::format("model: {}", id), request_id)};
    }
    return {200, "application/json", mock_model_body(id)};
  }

  static asio::awaitable<Exchange> stream_events(const Outbound& out, const std::string& request_id,
                                                 UpstreamSink& sink) {
    UpstreamHead head{200, {}};
    head.headers.set(http::field::content_type, "text/event-stream; charset=utf-8");
    head.headers.set("request-id", request_id);
    if (!co_await sink.head(head)) {
      co_return k_canceled;
    }
    for (const auto& event : mock_message_events(out.body, request_id)) {
      if (!co_await sink.data(event)) {
        co_return k_canceled;
      }
    }
    co_return Exchange{};
  }

  RandomSource& m_random;
};

} // namespace

Result<std::unique_ptr<Upstream>> http_upstream(const UpstreamSettings& settings) {
  return fail(Errc::config,
              "TEMP: the HTTP upstream arrives with the upstream helper's branch " + settings.url);
}

std::unique_ptr<Upstream> mock_upstream(RandomSource& random) {
  return std::make_unique<MockUpstream>(random);
}

} // namespace claudegate::proxy
