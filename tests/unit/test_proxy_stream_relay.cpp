// SPDX-License-Identifier: Apache-2.0
#include "proxy/stream_relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace claudegate::proxy;
using namespace std::chrono_literals;

namespace {

const std::string k_start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":"
                            "\"claude-haiku-4-5\",\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n";
const std::string k_delta =
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n\n";
const std::string k_stop = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

// An upstream that sends `chunks`, then (when `hang` is set) waits up to 30 s
// for more — unless the awaiting coroutine is canceled, as the relay does.
class ScriptedUpstream final : public Upstream {
public:
  ScriptedUpstream(std::vector<std::string> chunks, bool hang, Exchange end = {})
      : m_chunks(std::move(chunks)), m_hang(hang), m_end(std::move(end)) {}

  boost::asio::awaitable<Exchange> exchange(const Outbound&, UpstreamSink& sink) override {
    http::fields headers;
    headers.set("request-id", "req_scripted");
    const UpstreamHead head{200, headers};
    if (!co_await sink.head(head)) {
      co_return Exchange{UpstreamFailure::canceled, "canceled"};
    }
    for (const auto& chunk : m_chunks) {
      if (!co_await sink.data(chunk)) {
        co_return Exchange{UpstreamFailure::canceled, "canceled"};
      }
    }
    if (m_hang) {
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 30s);
      auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      m_woken = ec == boost::asio::error::operation_aborted;
      co_return Exchange{UpstreamFailure::canceled, "canceled"};
    }
    co_return m_end;
  }

  bool woken() const { return m_woken.load(); }

private:
  std::vector<std::string> m_chunks;
  bool m_hang;
  Exchange m_end;
  std::atomic<bool> m_woken{false};
};

// A sink that collects what is written, or refuses writes like a closed socket.
struct CollectingSink {
  std::string written;
  bool done = false;
  bool closed = false;
  httplib::DataSink sink;

  CollectingSink() {
    sink.write = [this](const char* data, std::size_t size) {
      if (closed) {
        return false;
      }
      written.append(data, size);
      return true;
    };
    sink.done = [this] { done = true; };
  }
};

} // namespace

TEST_CASE("a stream is relayed byte for byte and its usage metered") {
  ScriptedUpstream upstream({k_start, k_delta, k_stop}, false);
  const std::atomic<bool> aborting{false};
  auto relay = StreamRelay::start(upstream, Outbound{}, aborting);
  UpstreamHead head;
  REQUIRE(relay->wait_head(head));
  CHECK(head.status == 200);
  CollectingSink client;
  for (int i = 0; i < 20 && !client.done; ++i) {
    REQUIRE(relay->provide(client.sink));
  }
  CHECK(client.done);
  CHECK(client.written == k_start + k_delta + k_stop);
  const StreamOutcome outcome = relay->finish(true);
  CHECK(outcome.exchange.failure == UpstreamFailure::none);
  CHECK(outcome.usage.input_tokens == 12);
  CHECK(outcome.usage.output_tokens == 9);
  CHECK(outcome.model == "claude-haiku-4-5");
  CHECK(!outcome.client_gone);
}

TEST_CASE("an upstream that breaks off mid-stream ends the stream with an error event, usage kept") {
  ScriptedUpstream upstream({k_start, k_delta}, false,
                            {UpstreamFailure::connect, "upstream request failed (Read)"});
  const std::atomic<bool> aborting{false};
  auto relay = StreamRelay::start(upstream, Outbound{}, aborting);
  UpstreamHead head;
  REQUIRE(relay->wait_head(head));
  CollectingSink client;
  for (int i = 0; i < 20 && !client.done; ++i) {
    REQUIRE(relay->provide(client.sink));
  }
  CHECK(client.done);
  CHECK(client.written.starts_with(k_start + k_delta));
  CHECK(client.written.ends_with(
      "\n\nevent: error\ndata: {\"error\":{\"message\":\"upstream request failed (Read); "
      "the response is incomplete, retry the request\",\"type\":\"api_error\"},"
      "\"request_id\":\"req_scripted\",\"type\":\"error\"}\n\n"));
  const StreamOutcome outcome = relay->finish(true);
  CHECK(outcome.exchange.failure == UpstreamFailure::connect);
  CHECK(outcome.usage.input_tokens == 12);
  CHECK(outcome.usage.output_tokens == 9);
}

TEST_CASE("a client that leaves stops an idle upstream at once and is charged for what was produced") {
  ScriptedUpstream upstream({k_start, k_delta}, true);
  const std::atomic<bool> aborting{false};
  auto relay = StreamRelay::start(upstream, Outbound{}, aborting);
  UpstreamHead head;
  REQUIRE(relay->wait_head(head));
  CollectingSink client;
  while (client.written.size() < k_start.size() + k_delta.size()) {
    REQUIRE(relay->provide(client.sink));
  }
  const auto left = std::chrono::steady_clock::now();
  const StreamOutcome outcome = relay->finish(false);
  CHECK(std::chrono::steady_clock::now() - left < 5s); // not the upstream's 30 s
  CHECK(upstream.woken());
  CHECK(outcome.client_gone);
  CHECK(outcome.usage.input_tokens == 12);
  CHECK(outcome.usage.output_tokens == 9);
}

TEST_CASE("a failed write to the client cancels the upstream too") {
  ScriptedUpstream upstream({k_start}, true);
  const std::atomic<bool> aborting{false};
  auto relay = StreamRelay::start(upstream, Outbound{}, aborting);
  UpstreamHead head;
  REQUIRE(relay->wait_head(head));
  CollectingSink client;
  client.closed = true;
  bool kept_going = true;
  for (int i = 0; i < 20 && kept_going; ++i) {
    kept_going = relay->provide(client.sink);
  }
  CHECK(!kept_going);
  for (int i = 0; i < 50 && !upstream.woken(); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(upstream.woken());
  CHECK(relay->finish(false).client_gone);
}

TEST_CASE("a hard shutdown cancels a running stream") {
  ScriptedUpstream upstream({k_start}, true);
  std::atomic<bool> aborting{false};
  auto relay = StreamRelay::start(upstream, Outbound{}, aborting);
  UpstreamHead head;
  REQUIRE(relay->wait_head(head));
  aborting = true;
  CollectingSink client;
  (void)relay->provide(client.sink);
  // Stopped either way: a chunk arriving now is refused, and an upstream
  // already waiting is woken by the cancellation; never the 30 s wait.
  const auto stopped = std::chrono::steady_clock::now();
  CHECK(relay->finish(true).exchange.failure == UpstreamFailure::canceled);
  CHECK(std::chrono::steady_clock::now() - stopped < 5s);
}
