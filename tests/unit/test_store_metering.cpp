// SPDX-License-Identifier: Apache-2.0
// Quota reserve and settle from many threads at once (serve-local's request
// threads): batched into shared transactions, yet every reservation is
// checked against what the ones before it reserved, and nothing is lost.
#include "claudegate/base/duration.hpp"
#include "claudegate/store/sqlite.hpp"
#include "claudegate/store/store.hpp"

#include "scratch_dir.hpp"
#include "store_support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace claudegate;

namespace {

constexpr UnixSeconds k_metering_now = 1'750'000'000;

store::UsageRecord usage_of(const std::string& subject, std::int64_t output_tokens, int n) {
  store::UsageRecord record;
  record.at = k_metering_now;
  record.subject = subject;
  record.jti = "jti-" + std::to_string(n);
  record.model = "claude-haiku-4-5";
  record.status = 200;
  record.output_tokens = output_tokens;
  record.request_id = "req_" + std::to_string(n);
  return record;
}

// Run `work(i)` on `count` threads at once.
template <typename Work> void on_threads(int count, Work work) {
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&work, i] { work(i); });
  }
  for (auto& thread : threads) {
    thread.join();
  }
}

} // namespace

TEST_CASE("concurrent reservations never overshoot the daily limit") {
  FOR_EACH_STORE(scratch) {
    auto& store = scratch.store;
    std::atomic<int> granted{0};
    std::atomic<int> refused{0};
    std::atomic<int> failed{0};
    // 48 requests of 100 tokens against a limit of 1 000: exactly 10 fit.
    on_threads(48, [&](int) {
      auto reserved = store->reserve(test::exact_reservation("alice", k_metering_now, 100, 1000));
      if (!reserved) {
        ++failed;
      } else {
        ++(reserved->granted() ? granted : refused);
      }
    });
    CHECK(failed == 0);
    CHECK(granted == 10);
    CHECK(refused == 38);
    const auto status = store->quota_status("alice", k_metering_now, 1000).value();
    CHECK(status.reserved == 1000);
  }
}

TEST_CASE("concurrent settles all reach the ledger and the day's total") {
  FOR_EACH_STORE(scratch) {
    auto& store = scratch.store;
    std::atomic<int> failed{0};
    on_threads(40, [&](int i) {
      auto reserved = store->reserve(test::exact_reservation("bob", k_metering_now, 50, std::nullopt));
      if (!reserved || !reserved->granted()) {
        ++failed;
        return;
      }
      if (!store->settle(reserved->id, usage_of("bob", 7, i))) {
        ++failed;
      }
    });
    CHECK(failed == 0);
    const auto status = store->quota_status("bob", k_metering_now, std::nullopt).value();
    CHECK(status.used == 40 * 7);
    CHECK(status.reserved == 0);
    store::UsageQuery query;
    query.subject = "bob";
    query.since = duration::utc_day_start(k_metering_now);
    query.until = query.since.value() + 86'400;
    const auto rows = store->usage(query).value();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].requests == 40);
    CHECK(rows[0].output_tokens == 40 * 7);
  }
}
