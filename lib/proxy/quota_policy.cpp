// SPDX-License-Identifier: Apache-2.0
#include "quota_policy.hpp"

#include "claudegate/base/duration.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <limits>

namespace claudegate::proxy {

namespace {

std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  std::int64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? std::numeric_limits<std::int64_t>::max() : sum;
}

// The max_tokens the request may have under its plan's cap: the client's,
// lowered to the cap (over_cap = "reject" refused it before this).
std::int64_t capped_output(const Grant& grant, const MessageRequest& message) {
  const std::int64_t asked = message.max_tokens.value_or(0);
  return grant.max_tokens ? std::min(asked, *grant.max_tokens) : asked;
}

} // namespace

store::ReservationRequest reservation_request(const Grant& grant, const MessageRequest& message,
                                              UnixSeconds now, const std::string& owner) {
  const std::int64_t output = capped_output(grant, message);
  store::ReservationRequest request;
  request.subject = grant.subject;
  request.now = now;
  request.wanted = saturating_add(message.input_estimate, output);
  request.minimum = grant.over_cap == config::OverCap::clamp
                        ? saturating_add(message.input_estimate, std::min(output, k_min_clamped_output))
                        : request.wanted;
  request.take_remaining = !message.unbounded_input.empty();
  request.ceiling = grant.unbounded_input_reserve;
  request.limit = grant.daily_token_limit;
  request.owner = owner;
  return request;
}

std::int64_t forwarded_max_tokens(const Grant& grant, const MessageRequest& message, std::int64_t reserved) {
  return std::min(capped_output(grant, message), reserved - message.input_estimate);
}

Rejection quota_rejection(const store::QuotaStatus& status, const store::ReservationRequest& request,
                          const MessageRequest& message, UnixSeconds now) {
  Rejection out{429, "rate_limit_error", "", std::max<std::int64_t>(1, status.resets_at - now), false};
  const std::int64_t limit = status.limit.value_or(0);
  const std::int64_t left = std::max<std::int64_t>(0, limit - status.used - status.reserved);
  const std::string resets = duration::format_time(status.resets_at);
  const std::string unbounded =
      message.unbounded_input.empty()
          ? std::string{}
          : fmt::format("; its input cannot be bounded ({}), so it needs what is left",
                        message.unbounded_input);
  if (left == 0) {
    out.message =
        fmt::format("daily token quota of {} exhausted (used {}, reserved by requests in flight {}){}; "
                    "it resets at {}",
                    limit, status.used, status.reserved, unbounded, resets);
    return out;
  }
  const std::string least = request.minimum < request.wanted
                                ? fmt::format(" (at least {} with max_tokens lowered)", request.minimum)
                                : std::string{};
  out.message =
      fmt::format("this request needs up to {} tokens{}, {} left today of the daily quota of {} "
                  "(used {}, reserved by requests in flight {}){}; lower max_tokens or wait until {}",
                  request.wanted, least, left, limit, status.used, status.reserved, unbounded, resets);
  return out;
}

} // namespace claudegate::proxy
