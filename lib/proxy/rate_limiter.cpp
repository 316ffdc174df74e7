// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/rate_limiter.hpp"

#include <algorithm>
#include <iterator>

namespace claudegate::proxy {

namespace {

constexpr std::int64_t k_window_ms = 60'000;
// Idle subjects are looked for at most this often, so a sweep costs little per request.
constexpr std::int64_t k_sweep_interval_ms = 60'000;

void forget_before(std::deque<std::int64_t>& admitted_ms, std::int64_t now_ms) {
  while (!admitted_ms.empty() && admitted_ms.front() <= now_ms - k_window_ms) {
    admitted_ms.pop_front();
  }
}

// Whole seconds, at least one, until `ms` milliseconds have passed.
std::int64_t seconds_until(std::int64_t ms) {
  return std::max<std::int64_t>(1, (ms + 999) / 1000);
}

Admission refuse(std::int64_t retry_after, const char* reason) {
  return Admission{false, retry_after, reason};
}

// A refusal when `admitted_ms` already holds `rpm` requests of the last minute.
std::optional<Admission> rpm_refusal(const std::deque<std::int64_t>& admitted_ms, std::int64_t rpm,
                                     std::int64_t now_ms) {
  const auto allowed = static_cast<std::size_t>(std::max<std::int64_t>(0, rpm));
  if (admitted_ms.size() < allowed) {
    return std::nullopt;
  }
  if (admitted_ms.empty()) {
    return refuse(k_window_ms / 1000, "rpm"); // rpm 0 admits nothing
  }
  // The window frees up when the request that fills it ages out.
  const std::int64_t frees_at = admitted_ms[admitted_ms.size() - allowed] + k_window_ms;
  return refuse(seconds_until(frees_at - now_ms), "rpm");
}

} // namespace

Admission SubjectLimiter::admit(const std::string& subject, std::optional<std::int64_t> rpm,
                                std::optional<std::int64_t> max_concurrent, std::int64_t now_ms) {
  const std::lock_guard lock(m_mutex);
  sweep(now_ms);
  const auto [found, inserted] = m_subjects.try_emplace(subject);
  SubjectState& state = found->second;
  forget_before(state.admitted_ms, now_ms);
  std::optional<Admission> refusal;
  if (max_concurrent && state.in_flight >= *max_concurrent) {
    refusal = refuse(1, "concurrency");
  } else if (rpm) {
    refusal = rpm_refusal(state.admitted_ms, *rpm, now_ms);
  }
  if (refusal) {
    if (state.in_flight == 0 && state.admitted_ms.empty()) {
      m_subjects.erase(found);
    }
    return *refusal;
  }
  if (rpm) {
    state.admitted_ms.push_back(now_ms);
  }
  ++state.in_flight;
  return Admission{true, 0, {}};
}

void SubjectLimiter::release(const std::string& subject) {
  const std::lock_guard lock(m_mutex);
  const auto found = m_subjects.find(subject);
  if (found == m_subjects.end()) {
    return;
  }
  SubjectState& state = found->second;
  state.in_flight = std::max<std::int64_t>(0, state.in_flight - 1);
  if (state.in_flight == 0 && state.admitted_ms.empty()) {
    m_subjects.erase(found);
  }
}

std::size_t SubjectLimiter::tracked_subjects() const {
  const std::lock_guard lock(m_mutex);
  return m_subjects.size();
}

void SubjectLimiter::sweep(std::int64_t now_ms) {
  if (now_ms - m_last_sweep_ms < k_sweep_interval_ms && now_ms >= m_last_sweep_ms) {
    return;
  }
  m_last_sweep_ms = now_ms;
  for (auto it = m_subjects.begin(); it != m_subjects.end();) {
    forget_before(it->second.admitted_ms, now_ms);
    const bool idle = it->second.in_flight == 0 && it->second.admitted_ms.empty();
    it = idle ? m_subjects.erase(it) : std::next(it);
  }
}

} // namespace claudegate::proxy
