// SPDX-License-Identifier: Apache-2.0
// Internal to proxy: how serve-local stops on SIGINT/SIGTERM (server.cpp).
#pragma once

#include <atomic>
#include <csignal>
#include <cstdint>
#include <functional>
#include <thread>

namespace claudegate::proxy {

// What the signal watcher does to the server it stops.
struct ServerStops {
  std::function<bool()> is_running;     // the server has started listening
  std::function<void()> stop_accepting; // stop taking connections, let requests in flight finish
  std::function<void()> cut_streams;    // end the streams still running
};

// SIGINT/SIGTERM are blocked in every thread (set before any is started)
// and taken by one watcher: the first stops the server, a second one or the
// end of the drain period cancels the streams still running.
class SignalWatch {
public:
  SignalWatch();
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;
  ~SignalWatch();

  // Stop watching and wait for the watcher thread.
  void finish();

  void start(ServerStops server, std::atomic<bool>& aborting, std::int64_t drain_timeout);

  bool received() const { return m_received; }

private:
  // Wait for a signal (true), up to `limit_ms` (negative: no limit) or until quit (false).
  bool wait_signal(std::int64_t limit_ms);

  sigset_t m_set{};
  sigset_t m_old{};
  std::atomic<bool> m_quit{false};
  std::atomic<bool> m_received{false};
  std::thread m_thread;
};

} // namespace claudegate::proxy
