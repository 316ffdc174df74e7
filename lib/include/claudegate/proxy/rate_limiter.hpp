// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace claudegate::proxy {

// The limiter's answer: admitted, or refused with a retry hint.
struct Admission {
  bool admitted = false;
  std::int64_t retry_after = 0; // seconds, >= 1 when refused
  std::string reason;           // "rpm" or "concurrency" when refused
};

// Per-subject requests-per-minute (sliding 60 s window of admitted requests)
// and concurrency (admitted, not yet released) limits, in memory and
// thread-safe. Idle subjects are forgotten, so memory stays bounded by the
// active subjects.
class SubjectLimiter {
public:
  // Admit one request of `subject` at `now_ms` (Unix milliseconds) under
  // `rpm` and `max_concurrent` (nullopt = unlimited). An admitted request
  // must be paired with exactly one release(subject).
  Admission admit(const std::string& subject, std::optional<std::int64_t> rpm,
                  std::optional<std::int64_t> max_concurrent, std::int64_t now_ms);

  // End one admitted request of `subject`.
  void release(const std::string& subject);

  // Subjects currently tracked (for tests and metrics).
  std::size_t tracked_subjects() const;

private:
  struct SubjectState {
    std::deque<std::int64_t> admitted_ms; // admission times within the window, oldest first
    std::int64_t in_flight = 0;
  };

  void sweep(std::int64_t now_ms);

  mutable std::mutex m_mutex;
  std::unordered_map<std::string, SubjectState> m_subjects;
  std::int64_t m_last_sweep_ms = 0;
};

} // namespace claudegate::proxy
