// SPDX-License-Identifier: Apache-2.0
// QuotaBook: reservations from leases in memory, two books (two processes)
// on one SQLite file never overshooting, settle moving tokens from the
// lease to the ledger, leases returned on close, the UTC day rolling over.
#include "claudegate/base/duration.hpp"
#include "claudegate/store/ledger_writer.hpp"
#include "claudegate/store/quota_book.hpp"
#include "claudegate/store/sqlite.hpp"
#include "claudegate/store/store.hpp"

#include "store_support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace claudegate;
using claudegate::test::exact_reservation;
using claudegate::test::ScratchStore;

namespace {

constexpr UnixSeconds k_book_now = 1'795'428'000; // 2026-11-23T10:00:00Z

store::UsageRecord spent(const std::string& subject, std::int64_t tokens, UnixSeconds at = k_book_now) {
  store::UsageRecord row;
  row.at = at;
  row.subject = subject;
  row.model = "claude-haiku-4-5";
  row.status = 200;
  row.output_tokens = tokens;
  return row;
}

// The first column of `sql`'s first row (0 for NULL).
std::int64_t sql_count(const ScratchStore& scratch, const std::string& sql) {
  const std::int64_t value = scratch.sql_int(sql);
  REQUIRE(value >= 0);
  return value;
}

// A gateway process's metering: its own connection, ledger writer and book.
struct Process {
  std::unique_ptr<store::Store> store;
  FixedClock clock{k_book_now};
  store::LedgerWriter writer;
  store::QuotaBook book;
  Process(const ScratchStore& scratch, const std::string& owner, store::LedgerWriter::Options options = {})
      : store(scratch.open()), writer(*store, {}, options), book(*store, writer, clock, owner) {}
};

} // namespace

TEST_CASE("quota book: reservations come from the lease in memory; the store is asked when it runs short") {
  FOR_EACH_STORE(scratch) {
    Process p(scratch, store::reservation_owner());
    auto first = p.book.reserve(exact_reservation("kim", k_book_now, 100, 1000));
    REQUIRE(first);
    REQUIRE(first->granted());
    CHECK(first->amount == 100);
    CHECK(first->status.used == 0);
    CHECK(first->status.reserved == 100);
    // The lease holds 100 + 900/4 = 325: two more of 100 come from memory, the fourth grows it.
    CHECK(sql_count(scratch, "select sum(outstanding) from quota_leases") == 325);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(p.book.reserve(exact_reservation("kim", k_book_now, 100, 1000))->granted());
    }
    CHECK(sql_count(scratch, "select count(*) from quota_leases") == 1);
    CHECK(sql_count(scratch, "select sum(outstanding) from quota_leases") > 325);
    auto status = p.book.status("kim", k_book_now, 1000);
    CHECK(status.reserved == 400);
    CHECK(status.used == 0);
    // Unlimited subjects take no lease.
    auto unlimited = p.book.reserve(exact_reservation("root", k_book_now, 5000, std::nullopt));
    REQUIRE(unlimited);
    CHECK(unlimited->granted());
    CHECK(sql_count(scratch, "select count(*) from quota_leases where subject = 'root'") == 0);
  }
}

TEST_CASE("quota book: settle moves the spent tokens from the lease to the ledger; close returns the rest") {
  FOR_EACH_STORE(scratch) {
    Process p(scratch, store::reservation_owner());
    auto held = p.book.reserve(exact_reservation("lee", k_book_now, 100, 1000));
    REQUIRE(held);
    REQUIRE(held->granted());
    const std::int64_t leased = sql_count(scratch, "select outstanding from quota_leases");
    p.book.settle(held->id, spent("lee", 60));
    REQUIRE(p.writer.flush());
    CHECK(sql_count(scratch, "select sum(output_tokens) from usage_ledger") == 60);
    CHECK(sql_count(scratch, "select outstanding from quota_leases") == leased - 60);
    auto status = p.book.status("lee", k_book_now, 1000);
    CHECK(status.used == 60);
    CHECK(status.reserved == 0);
    p.book.close();
    REQUIRE(p.writer.flush());
    CHECK(sql_count(scratch, "select count(*) from quota_leases") == 0);
    auto stored = p.store->quota_status("lee", k_book_now, 1000);
    REQUIRE(stored);
    CHECK(stored->used == 60);
    CHECK(stored->reserved == 0);
    CHECK_FALSE(p.book.reserve(exact_reservation("lee", k_book_now, 1, 1000))); // closed
  }
}

TEST_CASE("quota book: two processes on one SQLite file never lease past the limit together") {
  FOR_EACH_STORE(scratch) {
    constexpr std::int64_t limit = 20'000;
    Process a(scratch, store::reservation_owner() + "a");
    Process b(scratch, store::reservation_owner() + "b");
    std::atomic<std::int64_t> granted{0};
    std::atomic<int> refused{0};
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        Process& p = t % 2 == 0 ? a : b;
        for (int i = 0; i < 80; ++i) {
          const std::int64_t amount = 50 + (t * 37 + i * 11) % 200;
          auto held = p.book.reserve(exact_reservation("max", k_book_now, amount, limit));
          if (!held) {
            ++failed;
            continue;
          }
          if (!held->granted()) {
            ++refused;
            continue;
          }
          granted += held->amount;
          p.book.settle(held->id, spent("max", held->amount));
        }
      });
    }
    for (auto& thread : threads) {
      thread.join();
    }
    CHECK(failed == 0);
    CHECK(refused > 0);
    CHECK(granted <= limit);
    a.book.close();
    b.book.close();
    REQUIRE(a.writer.flush());
    REQUIRE(b.writer.flush());
    CHECK(sql_count(scratch, "select sum(output_tokens) from usage_ledger") == granted);
    CHECK(sql_count(scratch, "select count(*) from quota_leases") == 0);
    CHECK(granted > limit / 2); // leases came back and were reused, not stranded
  }
}

TEST_CASE("quota book: a new UTC day starts a fresh lease; the old day's is returned after its last settle") {
  FOR_EACH_STORE(scratch) {
    Process p(scratch, store::reservation_owner());
    const UnixSeconds late = duration::utc_day_start(k_book_now) + 86'400 - 10;
    const UnixSeconds next = late + 20;
    auto evening = p.book.reserve(exact_reservation("ned", late, 900, 1000));
    REQUIRE(evening);
    REQUIRE(evening->granted());
    CHECK_FALSE(p.book.reserve(exact_reservation("ned", late, 900, 1000))->granted());
    auto morning = p.book.reserve(exact_reservation("ned", next, 900, 1000));
    REQUIRE(morning);
    CHECK(morning->granted());
    CHECK(morning->status.used == 0);
    CHECK(morning->status.reserved == 900);
    CHECK(morning->status.resets_at == duration::utc_day_start(next) + 86'400);
    CHECK(p.book.status("ned", late, 1000).reserved == 0); // nothing known of a day past
    REQUIRE(p.writer.flush());
    CHECK(sql_count(scratch, "select count(*) from quota_leases")
          == 2); // yesterday's still holds the evening
    p.book.settle(evening->id, spent("ned", 900, next));
    REQUIRE(p.writer.flush());
    CHECK(sql_count(scratch, "select count(*) from quota_leases") == 1);
    CHECK(sql_count(scratch, "select count(*) from quota_leases where day = "
                                 + std::to_string(duration::utc_day_start(next)))
          == 1);
  }
}

TEST_CASE("quota book: an expired lease of a crashed process stops counting; live ones are extended") {
  FOR_EACH_STORE(scratch) {
    {
      auto crashed = scratch.open();
      store::LeaseRequest request{exact_reservation("oz", k_book_now, 600, 1000, "crashed|x|1|1"), 0, 0,
                                  k_book_now + store::k_lease_ttl};
      REQUIRE(crashed->take_lease(request, k_book_now)->granted());
    }
    Process p(scratch, store::reservation_owner());
    CHECK_FALSE(p.book.reserve(exact_reservation("oz", k_book_now + 1, 600, 1000))->granted());
    const UnixSeconds later = k_book_now + store::k_lease_ttl;
    auto after = p.book.reserve(exact_reservation("oz", later, 600, 1000));
    REQUIRE(after);
    CHECK(after->granted());
    // maintain() (the ledger thread's task) keeps this process's lease alive past its first expiry.
    p.clock.set(later + store::k_lease_ttl - 2);
    p.book.maintain();
    CHECK(sql_count(scratch,
                    "select expires_at from quota_leases where owner = '" + store::reservation_owner() + "'")
          == later + store::k_lease_ttl - 2 + store::k_lease_ttl);
  }
}

TEST_CASE("quota book: while the ledger cannot be written, nothing more is reserved") {
  FOR_EACH_STORE(scratch) {
    store::LedgerWriter::Options options;
    options.drain_timeout = std::chrono::milliseconds(50);
    Process p(scratch, store::reservation_owner(), options);
    auto held = p.book.reserve(exact_reservation("pat", k_book_now, 10, 1000));
    REQUIRE(held);
    scratch.raw("DROP TABLE usage_daily"); // every ledger write now fails
    p.book.settle(held->id, spent("pat", 10));
    CHECK_FALSE(p.writer.flush());
    auto refused = p.book.reserve(exact_reservation("pat", k_book_now, 10, 1000));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::storage);
  }
}
