// SPDX-License-Identifier: Apache-2.0
// Group commit: writes that arrive while a transaction is being written wait
// and then go out together in the next one, so N concurrent callers pay for
// one commit (one WAL append, one round of file locks) instead of N. A lone
// caller commits at once, as without batching.
#pragma once

#include "claudegate/base/errors.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <iterator>
#include <mutex>
#include <span>
#include <vector>

namespace claudegate::store {

class GroupCommit {
public:
  // One caller's write: `body` runs on whichever thread leads its batch.
  struct Job {
    const std::function<Result<void>()>* body;
    Result<void> result = fail(Errc::storage, "the write batch holding this write was abandoned; try again");
    bool done = false;
  };
  // Runs a batch: every job's body inside one transaction, setting each result.
  using Runner = std::function<void(std::span<Job* const>)>;

  // `max_batch` bounds how many writes share one transaction (latency of the last one).
  explicit GroupCommit(std::size_t max_batch = 64) : m_max_batch(std::max<std::size_t>(max_batch, 1)) {}

  // Queue `body` and wait until a batch containing it has been run by `runner`
  // (on this thread when no batch is running, else on the thread that leads
  // the next one). Returns the result `runner` set for it. Thread-safe; not
  // reentrant (a body must not call run again).
  Result<void> run(const std::function<Result<void>()>& body, const Runner& runner) {
    Job job{&body};
    std::unique_lock lock(m_mutex);
    m_queue.push_back(&job);
    while (!job.done) {
      if (m_running) {
        m_finished.wait(lock);
        continue;
      }
      lead(lock, runner);
    }
    return std::move(job.result);
  }

  // The most writes one transaction has held so far (for tests and tuning).
  std::size_t largest_batch() const {
    const std::lock_guard lock(m_mutex);
    return m_largest;
  }

private:
  // Take the waiting jobs (up to max_batch), run them unlocked, mark them
  // done and wake their callers, also when `runner` throws.
  void lead(std::unique_lock<std::mutex>& lock, const Runner& runner) {
    const auto count = std::min(m_queue.size(), m_max_batch);
    std::vector<Job*> batch(m_queue.begin(), m_queue.begin() + static_cast<std::ptrdiff_t>(count));
    m_queue.erase(m_queue.begin(), m_queue.begin() + static_cast<std::ptrdiff_t>(count));
    m_largest = std::max(m_largest, batch.size());
    m_running = true;
    lock.unlock();
    struct Finish {
      GroupCommit& self;
      std::unique_lock<std::mutex>& lock;
      std::vector<Job*>& batch;
      ~Finish() {
        lock.lock();
        for (Job* job : batch) {
          job->done = true;
        }
        self.m_running = false;
        self.m_finished.notify_all();
      }
    } finish{*this, lock, batch};
    runner(batch);
  }

  const std::size_t m_max_batch;
  mutable std::mutex m_mutex;
  std::condition_variable m_finished;
  std::vector<Job*> m_queue;
  bool m_running = false;
  std::size_t m_largest = 0;
};

} // namespace claudegate::store
