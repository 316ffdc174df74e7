// SPDX-License-Identifier: Apache-2.0
#include "auth_guard.hpp"

#include "claudegate/base/duration.hpp"

#include <fmt/core.h>

namespace claudegate::proxy {

namespace {

std::string route_of(const Request& req) {
  return req.method + " " + req.path;
}

// An expired or not-yet-valid credential was genuine (its signature or its
// hash matched): not a guess, and a client whose token lapsed in the middle
// of a burst must not lock itself out of the /auth/refresh that cures it.
bool is_guess(std::string_view reason) {
  return reason != "expired" && reason != "not_yet_valid";
}

} // namespace

LockoutPolicy lockout_policy(const config::LockoutConfig& config) {
  LockoutPolicy policy;
  policy.ip_failures = config.failures_per_minute;
  policy.key_failures = config.key_failures_per_minute;
  policy.first = config.first;
  policy.repeat = config.repeat;
  policy.memory = config.memory;
  return policy;
}

AuthGuard::AuthGuard(LockoutPolicy policy, const Clock& clock, Metrics& metrics, RequestLog& log)
    : m_lockout(policy, clock), m_clock(clock), m_metrics(metrics), m_log(log) {
}

std::optional<Rejection> AuthGuard::check(const Request& req) const {
  const auto retry_after = m_lockout.check(lockout_subject(req.remote_addr));
  if (!retry_after) {
    return std::nullopt;
  }
  // No x-should-retry: an SDK's backoff would only spend the lockout knocking.
  return Rejection{429, "rate_limit_error",
                   fmt::format("too many failed authentications from {}; locked out for {} more",
                               req.remote_addr, duration::format(*retry_after)),
                   *retry_after, false};
}

void AuthGuard::record_failure(const Request& req, std::string_view presented, std::string_view reason) {
  record_failure(req.remote_addr, key_id_of(presented), route_of(req), reason);
}

void AuthGuard::record_failure(std::string_view ip, std::string_view key_id, std::string_view route,
                               std::string_view reason) {
  m_metrics.count_auth_failure(reason);
  json::Json line = {{"time", duration::format_time(m_clock.now())},
                     {"level", "warning"},
                     {"event", "auth_failure"},
                     {"ip", ip},
                     {"route", route},
                     {"reason", reason}};
  if (!key_id.empty()) {
    line["key_id"] = key_id;
  }
  m_log.write(line);
  if (!is_guess(reason)) {
    return;
  }
  const std::string subject = lockout_subject(ip);
  const LockoutEvent event = m_lockout.record_failure(subject, key_id);
  if (event.ip_locked || event.key_attacked) {
    log_lockout(subject, key_id, event);
  }
}

void AuthGuard::log_lockout(std::string_view subject, std::string_view key_id, const LockoutEvent& event) {
  const UnixSeconds now = m_clock.now();
  if (event.key_attacked) {
    m_log.write({{"time", duration::format_time(now)},
                 {"level", "warning"},
                 {"event", "key_under_attack"},
                 {"key_id", key_id},
                 {"until", duration::format_time(now + m_lockout.policy().first)}});
  }
  if (!event.ip_locked) {
    return;
  }
  m_log.write({{"time", duration::format_time(now)},
               {"level", "warning"},
               {"event", "lockout"},
               {"ip", subject},
               {"duration", duration::format(event.duration)},
               {"until", duration::format_time(now + event.duration)},
               {"repeat", event.repeat},
               {"cause", event.by_key ? "key_under_attack" : "ip_failures"}});
}

std::string AuthGuard::render_metrics() const {
  const LockoutCounts counts = m_lockout.counts();
  return fmt::format("# HELP claudegate_lockouts_total IP lockouts begun for failed authentications\n"
                     "# TYPE claudegate_lockouts_total counter\n"
                     "claudegate_lockouts_total {}\n"
                     "# HELP claudegate_lockouts_active IPs locked out now\n"
                     "# TYPE claudegate_lockouts_active gauge\n"
                     "claudegate_lockouts_active {}\n",
                     counts.total, counts.active);
}

} // namespace claudegate::proxy
