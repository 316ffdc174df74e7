// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "upstream.hpp"

#include "claudegate/proxy/sse_usage.hpp"

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

// One streaming exchange: the upstream runs on its own thread, metering
// every event it produces, while the server's chunked content provider
// writes each chunk to the client as soon as it arrives (no buffering).
namespace claudegate::proxy {

struct StreamOutcome {
  Exchange exchange;
  SseUsageMeter meter; // what was read of the stream, for charge_stream
  Usage usage;
  std::optional<std::string> model;
  bool client_gone = false;
};

class StreamRelay {
public:
  // Start `out` on `upstream`; a true `aborting` (hard shutdown) cancels it.
  static std::shared_ptr<StreamRelay> start(Upstream& upstream, Outbound out,
                                            const std::atomic<bool>& aborting);

  StreamRelay(const StreamRelay&) = delete;
  StreamRelay& operator=(const StreamRelay&) = delete;
  ~StreamRelay();

  // Block until the upstream's status and headers arrive (their copy in
  // `head`, true) or the exchange failed before them (false).
  bool wait_head(UpstreamHead& head);

  // The chunked content provider: write what has arrived to `sink`; false
  // when the client is gone.
  bool provide(httplib::DataSink& sink);

  // Stop relaying (`delivered` false: the client went away), wait for the
  // upstream thread and give what was produced.
  StreamOutcome finish(bool delivered);

private:
  class Sink;
  StreamRelay(Upstream& upstream, const std::atomic<bool>& aborting)
      : m_upstream(upstream), m_aborting(aborting) {}
  void run(const Outbound& out);
  bool accept_chunk(std::string_view chunk);
  void client_left();
  void cancel_exchange();
  static bool client_still_there(httplib::DataSink& sink);

  Upstream& m_upstream;
  const std::atomic<bool>& m_aborting;
  // bridge until the Beast server (#16): the exchange runs on m_context in
  // m_thread; cancel_exchange() posts m_cancel's terminal emit into it.
  asio::io_context m_context;
  asio::cancellation_signal m_cancel;
  std::atomic<bool> m_canceled{false};
  std::thread m_thread;
  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::deque<std::string> m_chunks;
  std::optional<UpstreamHead> m_head;
  bool m_done = false;
  bool m_client_gone = false;
  Exchange m_exchange;
  SseUsageMeter m_meter; // upstream thread only, until joined
};

} // namespace claudegate::proxy
