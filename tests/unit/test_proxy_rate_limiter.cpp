// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/rate_limiter.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace claudegate::proxy;

namespace {

constexpr std::int64_t k_t0 = 1'700'000'000'000;

} // namespace

TEST_CASE("rate_limiter: unlimited subjects are always admitted and not remembered once released") {
  SubjectLimiter limiter;
  for (int i = 0; i < 100; ++i) {
    const auto admission = limiter.admit("alice", std::nullopt, std::nullopt, k_t0 + i);
    CHECK(admission.admitted);
    CHECK(admission.reason.empty());
  }
  for (int i = 0; i < 100; ++i) {
    limiter.release("alice");
  }
  CHECK(limiter.tracked_subjects() == 0);
}

TEST_CASE("rate_limiter: rpm is a sliding 60 s window of admitted requests") {
  SubjectLimiter limiter;
  CHECK(limiter.admit("a", 2, std::nullopt, k_t0).admitted);
  limiter.release("a");
  CHECK(limiter.admit("a", 2, std::nullopt, k_t0 + 30'000).admitted);
  limiter.release("a");
  auto refused = limiter.admit("a", 2, std::nullopt, k_t0 + 45'000);
  CHECK_FALSE(refused.admitted);
  CHECK(refused.reason == "rpm");
  CHECK(refused.retry_after == 15); // the first request ages out at t0+60 s
  refused = limiter.admit("a", 2, std::nullopt, k_t0 + 59'999);
  CHECK_FALSE(refused.admitted);
  CHECK(refused.retry_after == 1);
  CHECK(limiter.admit("a", 2, std::nullopt, k_t0 + 60'000).admitted);
  limiter.release("a");
  refused = limiter.admit("a", 2, std::nullopt, k_t0 + 60'001);
  CHECK_FALSE(refused.admitted);
  CHECK(refused.retry_after == 30);
}

TEST_CASE("rate_limiter: refusals are not counted against the window") {
  SubjectLimiter limiter;
  CHECK(limiter.admit("a", 1, std::nullopt, k_t0).admitted);
  limiter.release("a");
  for (int i = 1; i < 50; ++i) {
    CHECK_FALSE(limiter.admit("a", 1, std::nullopt, k_t0 + i * 1000).admitted);
  }
  CHECK(limiter.admit("a", 1, std::nullopt, k_t0 + 60'000).admitted);
}

TEST_CASE("rate_limiter: concurrency counts admitted requests until released") {
  SubjectLimiter limiter;
  CHECK(limiter.admit("a", std::nullopt, 2, k_t0).admitted);
  CHECK(limiter.admit("a", std::nullopt, 2, k_t0).admitted);
  const auto refused = limiter.admit("a", std::nullopt, 2, k_t0);
  CHECK_FALSE(refused.admitted);
  CHECK(refused.reason == "concurrency");
  CHECK(refused.retry_after == 1);
  CHECK(limiter.admit("b", std::nullopt, 2, k_t0).admitted); // subjects are independent
  limiter.release("a");
  CHECK(limiter.admit("a", std::nullopt, 2, k_t0).admitted);
}

TEST_CASE("rate_limiter: zero limits admit nothing; stray releases are harmless") {
  SubjectLimiter limiter;
  const auto no_rpm = limiter.admit("a", 0, std::nullopt, k_t0);
  CHECK_FALSE(no_rpm.admitted);
  CHECK(no_rpm.retry_after >= 1);
  CHECK_FALSE(limiter.admit("a", std::nullopt, 0, k_t0).admitted);
  limiter.release("nobody");
  limiter.release("a");
  CHECK(limiter.tracked_subjects() == 0);
}

TEST_CASE("rate_limiter: idle subjects are dropped, so memory stays bounded") {
  SubjectLimiter limiter;
  for (int i = 0; i < 1000; ++i) {
    const std::string subject = "user" + std::to_string(i);
    REQUIRE(limiter.admit(subject, 10, 2, k_t0).admitted);
    limiter.release(subject);
  }
  CHECK(limiter.tracked_subjects() == 1000); // their windows still hold a request
  CHECK(limiter.admit("late", 10, 2, k_t0 + 61'000).admitted);
  CHECK(limiter.tracked_subjects() == 1);
}

TEST_CASE("rate_limiter: concurrent admits never exceed max_concurrent") {
  SubjectLimiter limiter;
  std::atomic<int> in_flight{0};
  std::atomic<int> peak{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (!limiter.admit("shared", std::nullopt, 3, k_t0).admitted) {
          continue;
        }
        const int now = ++in_flight;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        --in_flight;
        limiter.release("shared");
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CHECK(peak.load() <= 3);
  CHECK(limiter.tracked_subjects() == 0);
}
