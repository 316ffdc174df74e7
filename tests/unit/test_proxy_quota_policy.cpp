// SPDX-License-Identifier: Apache-2.0
#include "proxy/quota_policy.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <string>

using namespace claudegate;
using namespace claudegate::proxy;

namespace {

constexpr UnixSeconds k_now = 1'750'000'000;

Grant grant_of(std::optional<std::int64_t> cap, config::OverCap over_cap,
               std::optional<std::int64_t> limit = 10'000) {
  Grant grant;
  grant.subject = "alice";
  grant.plan = "p";
  grant.max_tokens = cap;
  grant.over_cap = over_cap;
  grant.daily_token_limit = limit;
  return grant;
}

MessageRequest message_of(std::int64_t input, std::int64_t max_tokens, std::string unbounded = {}) {
  MessageRequest message;
  message.model = "claude-haiku-4-5";
  message.input_estimate = input;
  message.max_tokens = max_tokens;
  message.unbounded_input = std::move(unbounded);
  return message;
}

} // namespace

TEST_CASE("quota_policy: clamping plans ask for input + max_tokens, content with input + 256") {
  const auto request =
      reservation_request(grant_of(4096, config::OverCap::clamp), message_of(100, 32'000), k_now, "me");
  CHECK(request.subject == "alice");
  CHECK(request.wanted == 100 + 4096); // lowered to the cap first
  CHECK(request.minimum == 100 + 256);
  CHECK_FALSE(request.take_remaining);
  CHECK(request.limit == std::optional<std::int64_t>(10'000));
  CHECK(request.owner == "me");
}

TEST_CASE("quota_policy: rejecting plans need the whole request") {
  const auto request =
      reservation_request(grant_of(std::nullopt, config::OverCap::reject), message_of(100, 900), k_now, "me");
  CHECK(request.wanted == 1000);
  CHECK(request.minimum == 1000);
  const auto small =
      reservation_request(grant_of(std::nullopt, config::OverCap::clamp), message_of(10, 100), k_now, "me");
  CHECK(small.minimum == 110); // fewer than 256 asked: all of it
}

TEST_CASE("quota_policy: sums saturate instead of wrapping") {
  constexpr auto k_max = std::numeric_limits<std::int64_t>::max();
  const auto request = reservation_request(grant_of(std::nullopt, config::OverCap::reject),
                                           message_of(50, k_max), k_now, "me");
  CHECK(request.wanted == k_max);
  CHECK(request.minimum == k_max);
}

TEST_CASE("quota_policy: an unbounded input takes what is left, up to the plan's reserve") {
  auto grant = grant_of(std::nullopt, config::OverCap::clamp);
  grant.unbounded_input_reserve = 20'000;
  const auto request =
      reservation_request(grant, message_of(1600, 100, "a document with source type \"url\""), k_now, "me");
  CHECK(request.take_remaining);
  CHECK(request.ceiling == std::optional<std::int64_t>(20'000));
}

TEST_CASE("quota_policy: the forwarded max_tokens fits the cap and the reservation") {
  const auto grant = grant_of(4096, config::OverCap::clamp);
  CHECK(forwarded_max_tokens(grant, message_of(100, 32'000), 100 + 4096) == 4096);
  CHECK(forwarded_max_tokens(grant, message_of(100, 32'000), 3000) == 2900);
  CHECK(forwarded_max_tokens(grant, message_of(100, 500), 600) == 500);
}

TEST_CASE("quota_policy: the 429 says what the request needs and what is left") {
  const auto grant = grant_of(4096, config::OverCap::clamp, 1000);
  const auto message = message_of(100, 32'000);
  const auto request = reservation_request(grant, message, k_now, "me");
  store::QuotaStatus status{700, 150, 1000, k_now + 3600};
  const auto bigger = quota_rejection(status, request, message, k_now);
  CHECK(bigger.status == 429);
  CHECK(bigger.type == "rate_limit_error");
  CHECK(bigger.retry_after == std::optional<std::int64_t>(3600));
  CHECK_FALSE(bigger.should_retry);
  CHECK(bigger.message.find("needs up to 4196 tokens (at least 356 with max_tokens lowered), 150 left today")
        != std::string::npos);
  status.used = 850;
  const auto exhausted = quota_rejection(status, request, message, k_now);
  CHECK(exhausted.message.find("daily token quota of 1000 exhausted (used 850") != std::string::npos);
  const auto unbounded_message = message_of(100, 100, "the server tool web_fetch_20250910");
  const auto unbounded = quota_rejection(status, reservation_request(grant, unbounded_message, k_now, "me"),
                                         unbounded_message, k_now);
  CHECK(unbounded.message.find("cannot be bounded (the server tool web_fetch_20250910)")
        != std::string::npos);
}
