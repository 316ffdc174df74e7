// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/revocation_watch.hpp"

#include <fmt/core.h>

namespace claudegate::store {

namespace {
// After a push, how long and how often the epoch is read again.
constexpr std::chrono::milliseconds k_settle_window{200};
constexpr std::chrono::milliseconds k_settle_step{5};
} // namespace

Result<bool> RevocationStore::wait_for_revocation(std::chrono::milliseconds timeout) {
  std::this_thread::sleep_for(timeout);
  return false;
}

Result<std::int64_t> StoreEpoch::current_epoch() {
  return m_store == nullptr ? Result<std::int64_t>{0} : m_store->revocation_epoch();
}

Result<std::unique_ptr<RevocationWatch>> RevocationWatch::start(RevocationStore& store, Options options) {
  std::unique_ptr<RevocationWatch> watch(new RevocationWatch(store, options));
  if (auto first = watch->refresh(); !first) {
    return propagate(first);
  }
  watch->m_thread = std::jthread([self = watch.get()](const std::stop_token& stop) { self->follow(stop); });
  return watch;
}

Result<std::unique_ptr<RevocationWatch>> RevocationWatch::start(RevocationStore& store) {
  return start(store, Options{});
}

RevocationWatch::RevocationWatch(RevocationStore& store, Options options)
    : m_store(store), m_options(options) {
}

RevocationWatch::~RevocationWatch() = default; // m_thread, the last member, stops and joins first

Result<std::int64_t> RevocationWatch::current_epoch() {
  const auto age =
      Clock::now() - Clock::time_point(Clock::duration(m_read_at.load(std::memory_order_acquire)));
  if (age > m_options.max_age) {
    return fail(Errc::storage,
                fmt::format("the store's revocation state is {} ms old (the store does not answer), so no "
                            "earlier check is trusted; service resumes when the store answers again",
                            std::chrono::duration_cast<std::chrono::milliseconds>(age).count()));
  }
  return m_epoch.load(std::memory_order_acquire);
}

Result<void> RevocationWatch::refresh() {
  const std::lock_guard lock(m_read_mutex);
  auto epoch = m_store.revocation_epoch();
  if (!epoch) {
    return propagate(epoch);
  }
  // The epoch first: a reader that sees the new time sees this epoch too.
  m_epoch.store(*epoch, std::memory_order_release);
  m_read_at.store(Clock::now().time_since_epoch().count(), std::memory_order_release);
  return {};
}

// Wait for a push or the poll interval, then read; a failing store is
// retried every poll (current_epoch fails meanwhile once max_age passes).
// A push can come before the transaction that caused it is visible (SQLite
// writes its WAL, and syncs it, before the commit shows), so for a while
// after one the epoch is read again every k_settle_step.
void RevocationWatch::follow(const std::stop_token& stop) {
  auto hot_until = Clock::time_point{};
  while (!stop.stop_requested()) {
    const bool hot = Clock::now() < hot_until;
    auto pushed = m_store.wait_for_revocation(hot ? k_settle_step : m_options.poll);
    if (stop.stop_requested()) {
      return;
    }
    if (!pushed) {
      std::this_thread::sleep_for(m_options.poll); // the store is down: do not spin
    } else if (*pushed) {
      hot_until = Clock::now() + k_settle_window;
    }
    (void)refresh();
  }
}

} // namespace claudegate::store
