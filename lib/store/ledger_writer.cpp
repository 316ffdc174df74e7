// SPDX-License-Identifier: Apache-2.0
// One store thread writes the queued ledger entries in order, a batch per
// transaction: the batch is what queued while the previous one was written
// (or, with max_delay, for that long after its first entry), up to
// max_batch. A failed batch stays at the front and is retried with backoff.
#include "claudegate/store/ledger_writer.hpp"

#include <algorithm>
#include <iterator>

namespace claudegate::store {

LedgerWriter::LedgerWriter(UsageStore& store, Reporting reporting)
    : LedgerWriter(store, std::move(reporting), Options{}) {
}

LedgerWriter::LedgerWriter(UsageStore& store, Reporting reporting, Options options)
    : m_store(store), m_reporting(std::move(reporting)), m_options(options) {
  m_options.max_batch = std::max<std::size_t>(m_options.max_batch, 1);
  m_next_maintenance = Clock::now() + m_options.maintenance_every;
  m_thread = std::thread([this] { run(); });
}

LedgerWriter::~LedgerWriter() {
  drain();
}

void LedgerWriter::append(LedgerEntry entry) {
  std::unique_lock lock(m_mutex);
  if (m_stopped) {
    lock.unlock();
    const std::vector<LedgerEntry> late{std::move(entry)};
    if (auto written = m_store.write_ledger(late); !written) {
      report_lost(late, written.error());
    }
    return;
  }
  const bool first = m_queue.empty();
  if (first) {
    m_oldest = Clock::now();
  }
  m_queue.push_back(std::move(entry));
  ++m_appended;
  // The store thread needs waking only to learn when the batch is due (its
  // first entry) or that it is full: entries in between just join it, so a
  // busy gateway wakes the thread once per batch, not once per request.
  const bool wake = first || m_queue.size() == m_options.max_batch;
  lock.unlock();
  if (wake) {
    m_wake.notify_one();
  }
}

void LedgerWriter::append_row(std::int64_t lease_id, const UsageRecord& row) {
  append(LedgerEntry{LedgerEntry::Kind::row, lease_id, 0, row});
}

bool LedgerWriter::flush() {
  std::unique_lock lock(m_mutex);
  const std::size_t target = m_appended;
  const std::size_t failures = m_failures;
  m_wake.notify_one();
  m_progress.wait(lock, [&] { return m_written >= target || m_failures != failures || m_stopped; });
  return m_written >= target;
}

std::size_t LedgerWriter::drain() {
  {
    const std::lock_guard lock(m_mutex);
    if (!m_stopping) {
      m_stopping = true;
      m_drain_deadline = Clock::now() + m_options.drain_timeout;
    }
  }
  set_maintenance({});
  m_wake.notify_one();
  if (m_thread.joinable()) {
    m_thread.join();
  }
  std::vector<LedgerEntry> left;
  std::optional<Error> why;
  {
    const std::lock_guard lock(m_mutex);
    m_stopped = true;
    left.assign(std::make_move_iterator(m_queue.begin()), std::make_move_iterator(m_queue.end()));
    m_queue.clear();
    why = m_failing;
  }
  m_progress.notify_all();
  report_lost(left, why.value_or(Error{Errc::storage, "the ledger writer stopped"}));
  return left.size();
}

void LedgerWriter::set_maintenance(std::function<void()> task) {
  const std::lock_guard lock(m_task_mutex);
  m_task = std::move(task);
}

std::optional<Error> LedgerWriter::failing() const {
  const std::lock_guard lock(m_mutex);
  return m_failing;
}

std::size_t LedgerWriter::waiting() const {
  const std::lock_guard lock(m_mutex);
  return m_queue.size();
}

std::size_t LedgerWriter::largest_batch() const {
  const std::lock_guard lock(m_mutex);
  return m_largest;
}

bool LedgerWriter::batch_due(Clock::time_point now) const {
  if (m_queue.empty() || now < m_retry_at) {
    return false;
  }
  return m_stopping || m_queue.size() >= m_options.max_batch || now >= m_oldest + m_options.max_delay;
}

auto LedgerWriter::next_wake() const -> Clock::time_point {
  Clock::time_point wake = m_next_maintenance;
  if (!m_queue.empty()) {
    wake = std::min(wake, m_stopping ? m_retry_at : std::max(m_retry_at, m_oldest + m_options.max_delay));
  }
  if (m_stopping) {
    wake = std::min(wake, m_drain_deadline);
  }
  return wake;
}

void LedgerWriter::run() {
  std::unique_lock lock(m_mutex);
  for (;;) {
    const auto now = Clock::now();
    if (batch_due(now)) {
      write_batch(lock);
      continue;
    }
    if (m_stopping && (m_queue.empty() || now >= m_drain_deadline)) {
      return;
    }
    if (!m_stopping && now >= m_next_maintenance) {
      maintain(lock);
      continue;
    }
    m_wake.wait_until(lock, next_wake());
  }
}

// Write the front of the queue; on failure it stays there, in order.
void LedgerWriter::write_batch(std::unique_lock<std::mutex>& lock) {
  const auto count = static_cast<std::ptrdiff_t>(std::min(m_queue.size(), m_options.max_batch));
  std::vector<LedgerEntry> batch(std::make_move_iterator(m_queue.begin()),
                                 std::make_move_iterator(m_queue.begin() + count));
  m_queue.erase(m_queue.begin(), m_queue.begin() + count);
  m_largest = std::max(m_largest, batch.size());
  lock.unlock();
  auto written = m_store.write_ledger(batch);
  lock.lock();
  if (written) {
    m_written += batch.size();
    m_failing.reset();
    m_backoff = std::chrono::milliseconds{0};
    m_progress.notify_all();
    return;
  }
  m_queue.insert(m_queue.begin(), std::make_move_iterator(batch.begin()),
                 std::make_move_iterator(batch.end()));
  m_failing = written.error();
  ++m_failures;
  m_backoff = std::clamp(m_backoff * 2, m_options.retry_min, m_options.retry_max);
  m_retry_at = Clock::now() + m_backoff;
  const std::size_t waiting = m_queue.size();
  m_progress.notify_all();
  lock.unlock();
  if (m_reporting.failed) {
    m_reporting.failed(written.error(), waiting);
  }
  lock.lock();
}

void LedgerWriter::maintain(std::unique_lock<std::mutex>& lock) {
  m_next_maintenance = Clock::now() + m_options.maintenance_every;
  lock.unlock();
  {
    const std::lock_guard task_lock(m_task_mutex);
    if (m_task) {
      m_task();
    }
  }
  lock.lock();
}

void LedgerWriter::report_lost(const std::vector<LedgerEntry>& entries, const Error& error) {
  if (!m_reporting.lost) {
    return;
  }
  for (const auto& entry : entries) {
    m_reporting.lost(entry, error);
  }
}

} // namespace claudegate::store
