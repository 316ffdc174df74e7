// SPDX-License-Identifier: Apache-2.0
#include "stream_relay.hpp"

#include "claudegate/proxy/anthropic_error.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <chrono>

namespace claudegate::proxy {

namespace {

// How long the provider waits for a chunk before letting httplib call it again.
constexpr auto k_poll = std::chrono::milliseconds(500);

// Anthropic's own `event: error` for an upstream that broke off or went quiet
// mid-stream, so the client sees a failure, not a stream that merely stops.
// The blank lines first end any event the upstream left half-sent.
std::string failure_event(const Exchange& exchange, const std::optional<UpstreamHead>& head) {
  const bool timeout = exchange.failure == UpstreamFailure::timeout;
  std::string request_id;
  if (head) {
    if (const auto it = head->headers.find("request-id"); it != head->headers.end()) {
      request_id = std::string(it->value());
    }
  }
  const std::string message = exchange.message + "; the response is incomplete, retry the request";
  return "\n\nevent: error\ndata: " + error_body(timeout ? "timeout_error" : "api_error", message, request_id)
         + "\n\n";
}

bool broke_off(const Exchange& exchange) {
  return exchange.failure == UpstreamFailure::connect || exchange.failure == UpstreamFailure::timeout;
}

} // namespace

// bridge until the Beast server (#16): the relay's side of an exchange.
class StreamRelay::Sink final : public UpstreamSink {
public:
  explicit Sink(StreamRelay& relay) : m_relay(relay) {}
  asio::awaitable<bool> head(const UpstreamHead& head) override {
    const std::lock_guard lock(m_relay.m_mutex);
    m_relay.m_head = head;
    m_relay.m_changed.notify_all();
    co_return !m_relay.m_client_gone;
  }
  asio::awaitable<bool> data(std::string_view chunk) override { co_return m_relay.accept_chunk(chunk); }

private:
  StreamRelay& m_relay;
};

std::shared_ptr<StreamRelay> StreamRelay::start(Upstream& upstream, Outbound out,
                                                const std::atomic<bool>& aborting) {
  std::shared_ptr<StreamRelay> relay(new StreamRelay(upstream, aborting));
  relay->m_thread = std::thread([raw = relay.get(), request = std::move(out)] { raw->run(request); });
  return relay;
}

StreamRelay::~StreamRelay() {
  if (m_thread.joinable()) {
    finish(false);
  }
}

// bridge until the Beast server (#16): the exchange on this relay's own io_context.
void StreamRelay::run(const Outbound& out) {
  Sink sink(*this);
  Exchange result;
  asio::co_spawn(
      m_context, m_upstream.exchange(out, sink),
      asio::bind_cancellation_slot(m_cancel.slot(), [&result](std::exception_ptr error, Exchange done) {
        result = error ? Exchange{UpstreamFailure::connect, "upstream request failed (internal error)"}
                       : std::move(done);
      }));
  // A cancel_exchange() from before the spawn found no slot to emit to.
  asio::post(m_context, [this] {
    if (m_canceled.load()) {
      m_cancel.emit(asio::cancellation_type::terminal);
    }
  });
  m_context.run();
  const std::lock_guard lock(m_mutex);
  m_exchange = std::move(result);
  m_done = true;
  m_changed.notify_all();
}

// Any thread: end the exchange at once (its upstream connection closed).
void StreamRelay::cancel_exchange() {
  if (!m_canceled.exchange(true)) {
    asio::post(m_context, [this] { m_cancel.emit(asio::cancellation_type::terminal); });
  }
}

bool StreamRelay::accept_chunk(std::string_view chunk) {
  // Metered before anything else: a client that left is still charged for what was produced.
  m_meter.feed(chunk);
  const std::lock_guard lock(m_mutex);
  if (m_client_gone || m_aborting.load()) {
    return false;
  }
  m_chunks.emplace_back(chunk);
  m_changed.notify_all();
  return true;
}

bool StreamRelay::wait_head(UpstreamHead& head) {
  std::unique_lock lock(m_mutex);
  m_changed.wait(lock, [this] { return m_head.has_value() || m_done; });
  if (!m_head) {
    return false;
  }
  head = *m_head;
  return true;
}

bool StreamRelay::provide(httplib::DataSink& sink) {
  if (m_aborting.load()) {
    cancel_exchange(); // hard shutdown: stop waiting on the upstream now
  }
  std::deque<std::string> ready;
  bool done = false;
  {
    std::unique_lock lock(m_mutex);
    m_changed.wait_for(lock, k_poll, [this] { return !m_chunks.empty() || m_done; });
    ready.swap(m_chunks);
    done = m_done;
    if (done && broke_off(m_exchange)) {
      ready.push_back(failure_event(m_exchange, m_head));
    }
  }
  if (ready.empty() && !done && !client_still_there(sink)) {
    client_left(); // noticed while the upstream is quiet, not at the next event
    return false;
  }
  for (const auto& chunk : ready) {
    if (!sink.write(chunk.data(), chunk.size())) {
      client_left();
      return false;
    }
  }
  if (done) {
    sink.done();
  }
  return true;
}

bool StreamRelay::client_still_there(httplib::DataSink& sink) {
  // httplib's is_writable also peeks for the peer's FIN (is_socket_alive).
  return !sink.is_writable || sink.is_writable();
}

void StreamRelay::client_left() {
  {
    const std::lock_guard lock(m_mutex);
    m_client_gone = true;
  }
  cancel_exchange(); // no one reads the rest: stop the upstream producing it
}

StreamOutcome StreamRelay::finish(bool delivered) {
  if (!delivered) {
    client_left();
  }
  if (m_thread.joinable()) {
    m_thread.join();
  }
  const std::lock_guard lock(m_mutex);
  return {m_exchange, m_meter, m_meter.usage(), m_meter.model(), m_client_gone};
}

} // namespace claudegate::proxy
