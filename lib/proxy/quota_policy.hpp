// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "wire.hpp"

#include "claudegate/base/clock.hpp"
#include "claudegate/proxy/message_request.hpp"
#include "claudegate/proxy/model_policy.hpp"
#include "claudegate/store/store.hpp"

#include <cstdint>
#include <string>

// How much of a subject's quota a Messages request holds, and what it may
// ask the upstream for (DESIGN.md §2, step 6): pure functions of the grant,
// the request and the store's answer, so the rules are testable alone.
namespace claudegate::proxy {

// The least output a clamped request is worth sending with.
inline constexpr std::int64_t k_min_clamped_output = 256;

// What to ask the store to hold for `message` under `grant` at `now` for
// process `owner`: input estimate + max_tokens (lowered to the plan's cap;
// sums saturate, never wrap), at least the input + 256 output tokens when
// the plan clamps, and all that is left today when the input cannot be
// bounded from the body (up to the plan's unbounded_input_reserve).
store::ReservationRequest reservation_request(const Grant& grant, const MessageRequest& message,
                                              UnixSeconds now, const std::string& owner);

// The max_tokens to forward once `reserved` tokens are held for `message`:
// the client's, lowered to the plan's cap and to what the reservation
// leaves after the input estimate.
std::int64_t forwarded_max_tokens(const Grant& grant, const MessageRequest& message, std::int64_t reserved);

// The 429 for a reservation `request` refused at `status` (at `now`): the
// quota is exhausted, or the request is simply bigger than what is left —
// saying what it needs and what is left, and when the day resets.
Rejection quota_rejection(const store::QuotaStatus& status, const store::ReservationRequest& request,
                          const MessageRequest& message, UnixSeconds now);

} // namespace claudegate::proxy
