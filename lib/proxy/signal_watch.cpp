// SPDX-License-Identifier: Apache-2.0
#include "signal_watch.hpp"

#include <chrono>
#include <ctime>
#include <pthread.h>
#include <utility>

namespace claudegate::proxy {

SignalWatch::SignalWatch() {
  sigemptyset(&m_set);
  sigaddset(&m_set, SIGINT);
  sigaddset(&m_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &m_set, &m_old);
}

SignalWatch::~SignalWatch() {
  finish();
  // A signal that came after the watcher stopped asks to stop a server that
  // has already stopped: consume it, or unblocking it would kill the
  // process before it reports its clean exit.
  const timespec now{0, 0};
  while (sigtimedwait(&m_set, nullptr, &now) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
}

void SignalWatch::finish() {
  m_quit = true;
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

void SignalWatch::start(ServerStops server, std::atomic<bool>& aborting, std::int64_t drain_timeout) {
  m_thread = std::thread([this, server = std::move(server), &aborting, drain_timeout] {
    if (!wait_signal(-1)) {
      return;
    }
    m_received = true;
    while (!server.is_running() && !m_quit) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    server.stop_accepting();
    wait_signal(drain_timeout * 1000);
    if (!m_quit) {
      aborting = true;
      server.cut_streams();
    }
  });
}

bool SignalWatch::wait_signal(std::int64_t limit_ms) {
  const timespec tick{0, 200 * 1000 * 1000};
  for (std::int64_t waited = 0; !m_quit && (limit_ms < 0 || waited < limit_ms); waited += 200) {
    if (sigtimedwait(&m_set, nullptr, &tick) > 0) {
      return true;
    }
  }
  return false;
}

} // namespace claudegate::proxy
