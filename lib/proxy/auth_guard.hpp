// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "auth_lockout.hpp"
#include "metrics.hpp"
#include "request_log.hpp"
#include "wire.hpp"

#include "claudegate/base/config.hpp"

#include "http_message.hpp"

#include <optional>
#include <string>
#include <string_view>

// The gateway's side of brute-force protection: every route that takes a
// credential asks check() before looking at it and reports each failure to
// record_failure(), which counts it in /metrics, logs it (never the
// credential) and locks the client IP out when AuthLockout says so.
namespace claudegate::proxy {

// The policy `config` ([serve.lockout]) sets.
LockoutPolicy lockout_policy(const config::LockoutConfig& config);

class AuthGuard {
public:
  AuthGuard(LockoutPolicy policy, const Clock& clock, Metrics& metrics, RequestLog& log);

  // The 429 (rate_limit_error, retry-after) for a request whose IP is
  // locked out, or nullopt: ask before any token verification or store work.
  std::optional<Rejection> check(const Request& req) const;

  // A failed authentication of `req` for `reason` (the metrics label, e.g.
  // "bad_signature", "refresh_reuse"); of `presented` only its API key id is
  // kept. "expired" and "not_yet_valid" are logged and counted but never
  // lock: such a credential was genuine, not a guess.
  void record_failure(const Request& req, std::string_view presented, std::string_view reason);

  // The same for a caller that has the parts: client `ip`, API key id
  // `key_id` (empty when none), `route` ("POST /oauth/token") and `reason`.
  void record_failure(std::string_view ip, std::string_view key_id, std::string_view route,
                      std::string_view reason);

  // claudegate_lockouts_total and claudegate_lockouts_active, in Prometheus text.
  std::string render_metrics() const;

private:
  // The lockout of `subject` (an IP, or an IPv6 /64) or the key id `key_id` under attack.
  void log_lockout(std::string_view subject, std::string_view key_id, const LockoutEvent& event);

  AuthLockout m_lockout;
  const Clock& m_clock;
  Metrics& m_metrics;
  RequestLog& m_log;
};

} // namespace claudegate::proxy
