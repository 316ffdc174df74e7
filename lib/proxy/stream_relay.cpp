// SPDX-License-Identifier: Apache-2.0
#include "stream_relay.hpp"

#include "claudegate/proxy/anthropic_error.hpp"

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
      request_id = it->second;
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

std::shared_ptr<StreamRelay> StreamRelay::start(Upstream& upstream, Outbound out,
                                                const std::atomic<bool>& aborting) {
  std::shared_ptr<StreamRelay> relay(new StreamRelay(upstream, aborting));
  out.cancel = relay->m_cancel;
  relay->m_thread = std::thread([raw = relay.get(), request = std::move(out)] { raw->run(request); });
  return relay;
}

StreamRelay::~StreamRelay() {
  if (m_thread.joinable()) {
    finish(false);
  }
}

void StreamRelay::run(const Outbound& out) {
  auto on_head = [this](const UpstreamHead& head) {
    const std::lock_guard lock(m_mutex);
    m_head = head;
    m_changed.notify_all();
    return !m_client_gone;
  };
  auto on_data = [this](std::string_view chunk) { return accept_chunk(chunk); };
  Exchange result = m_upstream.exchange(out, on_head, on_data);
  const std::lock_guard lock(m_mutex);
  m_exchange = std::move(result);
  m_done = true;
  m_changed.notify_all();
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
    m_cancel->cancel(); // hard shutdown: stop waiting on the upstream now
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
  m_cancel->cancel(); // no one reads the rest: stop the upstream producing it
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
