// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/store/usage.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

// The write-behind ledger (DESIGN.md §3): settled usage rows and lease
// returns are queued by the request path and written in group commits by
// one store thread, so no io thread ever waits on the disk.
namespace claudegate::store {

class LedgerWriter {
public:
  struct Options {
    // How long the first queued entry may wait for company before its
    // batch is written (0: as soon as the thread wakes; entries queued
    // meanwhile share the next transaction anyway).
    std::chrono::milliseconds max_delay{0};
    std::size_t max_batch = 512; // entries per transaction, at most
    std::chrono::milliseconds retry_min{20};
    std::chrono::milliseconds retry_max{1000};
    // How long drain() keeps retrying a failing store before it gives up
    // on the entries left (each reported to Reporting::lost).
    std::chrono::milliseconds drain_timeout{10'000};
    std::chrono::milliseconds maintenance_every{1000};
  };
  // Called on the store thread, never with a lock held.
  struct Reporting {
    // A batch could not be written (it stays queued and is retried).
    std::function<void(const Error& error, std::size_t waiting)> failed;
    // An entry that drain() could not write before its timeout: the last word on it.
    std::function<void(const LedgerEntry& entry, const Error& error)> lost;
  };

  // Starts the store thread. `store` must outlive this writer.
  LedgerWriter(UsageStore& store, Reporting reporting, Options options);
  LedgerWriter(UsageStore& store, Reporting reporting);
  LedgerWriter(const LedgerWriter&) = delete;
  LedgerWriter& operator=(const LedgerWriter&) = delete;
  ~LedgerWriter(); // drain()

  // Queue `entry`; never waits on the store. After drain() the entry is
  // written at once on the caller's thread (reported as lost if that fails).
  void append(LedgerEntry entry);
  void append_row(std::int64_t lease_id, const UsageRecord& row);

  // Wait until every entry queued before the call is written (true), or a
  // write attempt failed meanwhile (false). For tests and reports.
  bool flush();

  // Write everything queued (retrying a failing store up to drain_timeout),
  // stop the maintenance task and the thread; the entries left, if any,
  // are reported lost and counted in the result. Idempotent.
  std::size_t drain();

  // Run `task` on the store thread every maintenance_every (QuotaBook
  // extends its leases there); empty: none. Waits for a running task to end.
  void set_maintenance(std::function<void()> task);

  // The error of the last write attempt while it failed and entries wait.
  std::optional<Error> failing() const;
  std::size_t waiting() const;
  std::size_t largest_batch() const; // the most entries one transaction held so far

private:
  using Clock = std::chrono::steady_clock;
  void run();
  void write_batch(std::unique_lock<std::mutex>& lock);
  void maintain(std::unique_lock<std::mutex>& lock);
  bool batch_due(Clock::time_point now) const;
  Clock::time_point next_wake() const;
  void report_lost(const std::vector<LedgerEntry>& entries, const Error& error);

  UsageStore& m_store;
  Reporting m_reporting;
  Options m_options;
  mutable std::mutex m_mutex;
  std::condition_variable m_wake;     // the store thread: work, stop
  std::condition_variable m_progress; // flush(): a batch written or failed
  std::deque<LedgerEntry> m_queue;
  Clock::time_point m_oldest{};   // when the first queued entry came
  Clock::time_point m_retry_at{}; // after a failure: not before
  std::chrono::milliseconds m_backoff{0};
  Clock::time_point m_next_maintenance{};
  Clock::time_point m_drain_deadline{};
  std::optional<Error> m_failing;
  std::size_t m_appended = 0; // entries ever queued
  std::size_t m_written = 0;  // of those, written (in order)
  std::size_t m_failures = 0;
  std::size_t m_largest = 0;
  bool m_stopping = false;
  bool m_stopped = false;
  std::mutex m_task_mutex; // held while the task runs and while it is replaced
  std::function<void()> m_task;
  std::thread m_thread;
};

} // namespace claudegate::store
