// SPDX-License-Identifier: Apache-2.0
// Gateway::forward: one exchange with the upstream, its reply relayed to
// the client as it arrives (or read whole and rewritten), then metered,
// settled and logged (DESIGN.md §2, steps 7–9).
#include "gateway.hpp"

#include "claudegate/proxy/anthropic_error.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <charconv>

namespace claudegate::proxy {

namespace {

// The most of a reply kept for reading its usage or rewriting it; a
// Messages reply is a few KiB, a models list less. Past this a reply is
// still relayed whole, but charged as an estimate.
constexpr std::size_t k_max_kept_reply = 8 * 1024 * 1024;

// A non-streaming reply is held until this much of it is in: a reply that
// ends before (nearly all of them) leaves in one piece, with the upstream's
// status, or as a 502 when the upstream broke off; a longer one is relayed
// as it arrives, so memory stays bounded whatever the upstream sends.
constexpr std::size_t k_held_reply = 256 * 1024;

// The upstream's Content-Length, when it framed its body with one.
std::optional<std::uint64_t> content_length(const http::fields& headers) {
  if (headers.find(http::field::transfer_encoding) != headers.end()) {
    return std::nullopt;
  }
  const auto it = headers.find(http::field::content_length);
  if (it == headers.end()) {
    return std::nullopt;
  }
  const std::string_view value = it->value();
  std::uint64_t length = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
  return ec == std::errc{} && end == value.data() + value.size() ? std::optional(length) : std::nullopt;
}

std::string_view content_type(const http::fields& headers, std::string_view fallback) {
  const auto it = headers.find(http::field::content_type);
  return it != headers.end() ? std::string_view(it->value()) : fallback;
}

// Anthropic's own `event: error` for an upstream that broke off or went quiet
// mid-stream, so the client sees a failure, not a stream that merely stops.
// The blank lines first end any event the upstream left half-sent.
std::string failure_event(const Exchange& exchange, const std::string& request_id) {
  const bool timeout = exchange.failure == UpstreamFailure::timeout;
  const std::string message = exchange.message + "; the response is incomplete, retry the request";
  return "\n\nevent: error\ndata: " + error_body(timeout ? "timeout_error" : "api_error", message, request_id)
         + "\n\n";
}

bool broke_off(const Exchange& exchange) {
  return exchange.failure == UpstreamFailure::connect || exchange.failure == UpstreamFailure::timeout;
}

} // namespace

// The upstream's reply, relayed to the client as it comes, metered on the way.
class ReplySink final : public UpstreamSink {
public:
  ReplySink(Gateway& gateway, Forward& forward, ReplyWriter& writer)
      : m_gateway(gateway), m_forward(forward), m_writer(writer) {}

  asio::awaitable<bool> head(const UpstreamHead& head) override {
    m_head = head;
    if (!m_forward.out.stream) {
      co_return true; // held with the first bytes of the body (see data)
    }
    co_return co_await release({});
  }

  asio::awaitable<bool> data(std::string_view chunk) override {
    // Metered before anything else: a client that left is still charged for what was produced.
    if (m_forward.out.stream) {
      m_meter.feed(chunk);
    } else {
      keep(chunk);
    }
    if (m_released) {
      m_client_gone = !co_await m_writer.write_body(chunk);
      co_return !m_client_gone;
    }
    if (m_forward.rewrite || m_kept.size() <= k_held_reply) {
      co_return true;
    }
    co_return co_await release(m_kept);
  }

  // After the exchange: end the body, or answer whole when nothing went out yet.
  asio::awaitable<void> complete(const Exchange& exchange) {
    auto& call = m_forward.call;
    if (!m_released) {
      Response res = exchange.failure == UpstreamFailure::none && m_head ? whole_reply() : Response{};
      if (exchange.failure != UpstreamFailure::none || !m_head) {
        m_gateway.upstream_failed(res, call, exchange);
      }
      m_client_gone = !co_await m_writer.write(res);
    } else if (exchange.failure == UpstreamFailure::none) {
      m_client_gone = !co_await m_writer.end_body();
    } else if (m_forward.out.stream && broke_off(exchange) && !m_client_gone) {
      co_await m_writer.write_body(failure_event(exchange, call.request_id));
      m_client_gone = !co_await m_writer.end_body();
    } else {
      m_writer.abandon(); // the body stops short: only closing the connection says so
    }
  }

  const SseUsageMeter& meter() const { return m_meter; }
  const std::string& kept() const { return m_kept; }
  bool overflowed() const { return m_overflowed; }
  bool client_gone() const { return m_client_gone; }
  void set_client_gone() { m_client_gone = true; }

private:
  // The reply's head as the client gets it: the upstream's status and
  // relayable headers, the content type, the caller's quota.
  Response reply_head() {
    Response res;
    m_gateway.relay_head(res, m_forward.call, *m_head);
    res.set_header("Content-Type", content_type(m_head->headers, m_forward.out.stream ? "text/event-stream"
                                                                                      : "application/json"));
    if (m_forward.ticket) {
      m_gateway.refresh_status(*m_forward.ticket);
      m_gateway.quota_headers(res, *m_forward.ticket);
    }
    return res;
  }

  // A reply read to its end while held: sent in one piece (rewritten when asked).
  Response whole_reply() {
    Response res = reply_head();
    const bool rewrite = m_forward.rewrite && !m_overflowed && m_head->status == 200;
    res.body = rewrite ? m_forward.rewrite(m_kept) : m_kept;
    return res;
  }

  // Send the head and what is held of the body; from now on chunks are relayed as they come.
  asio::awaitable<bool> release(std::string_view held) {
    m_released = true;
    const Response res = reply_head();
    bool sent = co_await m_writer.write_head(res, content_length(m_head->headers));
    if (sent && !held.empty()) {
      sent = co_await m_writer.write_body(held);
    }
    m_client_gone = !sent;
    co_return sent;
  }

  void keep(std::string_view chunk) {
    if (m_kept.size() + chunk.size() > k_max_kept_reply) {
      m_overflowed = true;
    } else {
      m_kept.append(chunk);
    }
  }

  Gateway& m_gateway;
  Forward& m_forward;
  ReplyWriter& m_writer;
  std::optional<UpstreamHead> m_head;
  bool m_released = false; // the head went out: the rest of the body is relayed as it comes
  bool m_client_gone = false;
  bool m_overflowed = false;
  SseUsageMeter m_meter;
  std::string m_kept;
};

asio::awaitable<void> Gateway::forward(Forward forward, ReplyWriter& writer) {
  using namespace asio::experimental::awaitable_operators;
  ReplySink sink(*this, forward, writer);
  const auto started = std::chrono::steady_clock::now();
  auto ended = co_await (m_parts.upstream.exchange(forward.out, sink) || writer.gone());
  Exchange exchange{UpstreamFailure::canceled, "the client went away"};
  if (ended.index() == 0) {
    exchange = std::get<0>(std::move(ended));
  } else {
    sink.set_client_gone();
  }
  m_parts.metrics.observe_upstream(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
          .count());
  if (!sink.client_gone()) {
    co_await sink.complete(exchange);
  }
  forward.call.client_gone = sink.client_gone();
  meter(forward, sink);
  close_forward(forward);
}

// What a Messages call is charged: the usage read from its reply, or the estimate.
void Gateway::meter(Forward& forward, const ReplySink& sink) {
  if (!forward.ticket) {
    return;
  }
  auto& call = forward.call;
  const auto& reserved = forward.ticket->reserved;
  if (call.status == 0 && call.client_gone) {
    // Gone before the reply's head: the API may have run (and billed) the
    // request all the same, so hanging up early must not make it free.
    charge(call, Charge{{reserved.input, reserved.output, 0, 0}, true});
  } else if (forward.out.stream) {
    const auto& meter = sink.meter();
    charge(call, call.status == 200 ? charge_stream(meter, reserved) : Charge{meter.usage()});
  } else if (call.status == 200) {
    charge(call, sink.overflowed() ? Charge{{reserved.input, reserved.output, 0, 0}, true}
                                   : charge_message(sink.kept(), reserved));
  }
}

void Gateway::close_forward(Forward& forward) {
  if (forward.ticket) {
    settle(*forward.ticket, forward.call);
  }
  if (!forward.slot.empty()) {
    m_limiter.release(forward.slot);
  }
  finish(forward.call);
}

} // namespace claudegate::proxy
