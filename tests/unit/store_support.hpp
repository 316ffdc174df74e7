// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/store/store.hpp"

#include <optional>
#include <string>

namespace claudegate::test {

// A reservation request for exactly `amount` tokens (no clamping) under `limit`.
inline store::ReservationRequest exact_reservation(std::string subject, UnixSeconds now, std::int64_t amount,
                                                   std::optional<std::int64_t> limit,
                                                   std::string owner = store::reservation_owner()) {
  store::ReservationRequest request;
  request.subject = std::move(subject);
  request.now = now;
  request.wanted = amount;
  request.minimum = amount;
  request.limit = limit;
  request.owner = std::move(owner);
  return request;
}

} // namespace claudegate::test
