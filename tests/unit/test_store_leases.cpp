// SPDX-License-Identifier: Apache-2.0
// Quota leases in the store (take, grow, expire, settle against) and the
// write-behind LedgerWriter (group commits, drain, a failing store).
#include "claudegate/base/duration.hpp"
#include "claudegate/store/ledger_writer.hpp"
#include "claudegate/store/sqlite.hpp"
#include "claudegate/store/store.hpp"

#include "store_support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

using namespace claudegate;
using claudegate::test::exact_reservation;
using claudegate::test::ScratchStore;

namespace {

constexpr UnixSeconds k_lease_now = 1'795'428'000; // 2026-11-23T10:00:00Z

store::UsageRecord lease_row(const std::string& subject, std::int64_t tokens, int n,
                             UnixSeconds at = k_lease_now) {
  store::UsageRecord row;
  row.at = at;
  row.subject = subject;
  row.model = "claude-haiku-4-5";
  row.status = 200;
  row.output_tokens = tokens;
  row.request_id = "req_lease_" + std::to_string(n);
  return row;
}

store::LeaseRequest lease_for(std::int64_t amount, std::int64_t limit, const std::string& owner,
                              std::int64_t lease_id = 0, std::int64_t available = 0) {
  store::LeaseRequest request{exact_reservation("sam", k_lease_now, amount, limit, owner), lease_id,
                              available, k_lease_now + store::k_lease_ttl};
  return request;
}

std::int64_t count_rows(store::Store& s, const std::string& subject) {
  store::UsageQuery query;
  query.since = 0;
  query.subject = subject;
  auto rows = s.usage(query);
  REQUIRE(rows);
  return rows->empty() ? 0 : rows->front().requests;
}

// A UsageStore whose ledger writes fail while `broken` is set; the rest goes to `inner`.
class FlakyLedger final : public store::UsageStore {
public:
  explicit FlakyLedger(store::UsageStore& inner) : m_inner(inner) {}
  std::atomic<bool> broken{false};
  std::atomic<int> attempts{0};

  Result<store::Reservation> reserve(const store::ReservationRequest& r) override {
    return m_inner.reserve(r);
  }
  Result<std::int64_t> release_orphaned(const std::function<bool(std::string_view)>& alive) override {
    return m_inner.release_orphaned(alive);
  }
  Result<void> settle(std::int64_t id, const store::UsageRecord& u) override { return m_inner.settle(id, u); }
  Result<store::LeaseGrant> take_lease(const store::LeaseRequest& r, UnixSeconds now) override {
    return m_inner.take_lease(r, now);
  }
  Result<std::vector<std::int64_t>> extend_leases(const std::vector<std::int64_t>& ids, UnixSeconds now,
                                                  UnixSeconds until) override {
    return m_inner.extend_leases(ids, now, until);
  }
  Result<void> write_ledger(const std::vector<store::LedgerEntry>& entries) override {
    ++attempts;
    if (broken) {
      return fail(Errc::storage, "database or disk is full");
    }
    return m_inner.write_ledger(entries);
  }
  Result<store::QuotaStatus> quota_status(const std::string& s, UnixSeconds now,
                                          std::optional<std::int64_t> limit) override {
    return m_inner.quota_status(s, now, limit);
  }
  Result<std::vector<store::UsageRow>> usage(const store::UsageQuery& q) override { return m_inner.usage(q); }
  Result<std::vector<store::SubjectQuota>> subject_quotas(UnixSeconds now) override {
    return m_inner.subject_quotas(now);
  }

private:
  store::UsageStore& m_inner;
};

} // namespace

TEST_CASE("lease_amounts: the shortfall plus a quarter of what is left after it, never past the limit") {
  const auto plain = exact_reservation("sam", k_lease_now, 100, 1000);
  auto amounts = store::lease_amounts(plain, 0, 1000);
  REQUIRE(amounts);
  CHECK(amounts->reservation == 100);
  CHECK(amounts->added == 100 + 900 / store::k_lease_spare_divisor);
  amounts = store::lease_amounts(plain, 60, 1000); // 60 unreserved in the lease already
  REQUIRE(amounts);
  CHECK(amounts->added == 40 + 960 / store::k_lease_spare_divisor);
  amounts = store::lease_amounts(plain, 200, 0); // covered by the lease alone
  REQUIRE(amounts);
  CHECK(amounts->added == 0);
  CHECK_FALSE(store::lease_amounts(plain, 50, 40));  // 90 reachable < 100
  CHECK_FALSE(store::lease_amounts(plain, 0, -500)); // over the limit already
  auto everything = plain;
  everything.take_remaining = true;
  everything.minimum = 10;
  amounts = store::lease_amounts(everything, 30, 500);
  REQUIRE(amounts);
  CHECK(amounts->reservation == 530);
  CHECK(amounts->added == 500); // no spare: it took all
}

TEST_CASE("store leases: a live lease counts against everyone else until it expires") {
  FOR_EACH_STORE(scratch) {
    auto& s = *scratch.store;
    auto first = s.take_lease(lease_for(400, 1000, "crashed|boot|1|1"), k_lease_now);
    REQUIRE(first);
    REQUIRE(first->granted());
    CHECK(first->amounts.added == 400 + 600 / 4);
    CHECK(first->outstanding == 550);
    auto status = s.quota_status("sam", k_lease_now, 1000);
    REQUIRE(status);
    CHECK(status->reserved == 550);
    // Another process: 450 left, so 500 is refused and 450 granted.
    auto refused = s.take_lease(lease_for(500, 1000, "other|boot|2|2"), k_lease_now + 1);
    REQUIRE(refused);
    CHECK_FALSE(refused->granted());
    CHECK(refused->held == 550);
    // Expired (never extended: its process crashed): it stops counting.
    const UnixSeconds later = k_lease_now + store::k_lease_ttl;
    auto renewed = lease_for(1000, 1000, "other|boot|2|2");
    renewed.reservation.now = later;
    renewed.expires_at = later + store::k_lease_ttl;
    auto after = s.take_lease(renewed, later);
    REQUIRE(after);
    CHECK(after->granted());
    CHECK(after->amounts.reservation == 1000);
    // A grown lease counts its tokens once; extending a dead one does nothing.
    auto extended = s.extend_leases({first->lease_id, after->lease_id}, later, later + 60);
    REQUIRE(extended);
    CHECK(*extended == std::vector<std::int64_t>{after->lease_id});
  }
}

TEST_CASE("store leases: a row's tokens leave its lease in the same transaction; close returns the rest") {
  FOR_EACH_STORE(scratch) {
    auto& s = *scratch.store;
    auto lease = s.take_lease(lease_for(100, 1000, store::reservation_owner()), k_lease_now);
    REQUIRE(lease);
    REQUIRE(lease->granted());
    const std::int64_t outstanding = lease->outstanding;
    REQUIRE(s.write_ledger(
        {store::LedgerEntry{store::LedgerEntry::Kind::row, lease->lease_id, 0, lease_row("sam", 60, 1)}}));
    auto status = s.quota_status("sam", k_lease_now, 1000);
    REQUIRE(status);
    CHECK(status->used == 60);
    CHECK(status->reserved == outstanding - 60); // used + held unchanged: moved, not added
    // Growing the lease counts what it already holds (its outstanding is in `reserved`).
    auto grown =
        s.take_lease(lease_for(500, 1000, store::reservation_owner(), lease->lease_id, 0), k_lease_now);
    REQUIRE(grown);
    CHECK(grown->lease_id == lease->lease_id);
    CHECK(grown->outstanding == outstanding - 60 + grown->amounts.added);
    CHECK(60 + grown->outstanding <= 1000);
    REQUIRE(
        s.write_ledger({store::LedgerEntry{store::LedgerEntry::Kind::give_back, lease->lease_id, 50, {}}}));
    status = s.quota_status("sam", k_lease_now, 1000);
    REQUIRE(status);
    CHECK(status->reserved == grown->outstanding - 50);
    REQUIRE(s.write_ledger({store::LedgerEntry{store::LedgerEntry::Kind::close, lease->lease_id, 0, {}}}));
    status = s.quota_status("sam", k_lease_now, 1000);
    REQUIRE(status);
    CHECK(status->reserved == 0);
    CHECK(status->used == 60);
  }
}

TEST_CASE("store leases: one batch of rows, give-backs and a close moves what the entries one by one move") {
  FOR_EACH_STORE(scratch) {
    auto& s = *scratch.store;
    auto first = s.take_lease(lease_for(300, 10'000, store::reservation_owner()), k_lease_now);
    auto second = s.take_lease(lease_for(200, 10'000, "other|1|owner"), k_lease_now);
    REQUIRE(first);
    REQUIRE(second);
    REQUIRE(first->lease_id != second->lease_id);
    auto before = s.quota_status("sam", k_lease_now, 10'000);
    REQUIRE(before);
    using Kind = store::LedgerEntry::Kind;
    REQUIRE(s.write_ledger({
        store::LedgerEntry{Kind::row, first->lease_id, 0, lease_row("sam", 40, 1)},
        store::LedgerEntry{Kind::row, second->lease_id, 0, lease_row("sam", 30, 2)},
        store::LedgerEntry{Kind::give_back, first->lease_id, 25, {}},
        store::LedgerEntry{Kind::row, first->lease_id, 0, lease_row("sam", 15, 3, k_lease_now + 1)},
        store::LedgerEntry{Kind::close, second->lease_id, 0, {}},
    }));
    auto after = s.quota_status("sam", k_lease_now, 10'000);
    REQUIRE(after);
    CHECK(after->used == before->used + 40 + 30 + 15);
    // The first lease gave up 40 + 25 + 15; the second is gone with all it held.
    CHECK(after->reserved == first->outstanding - 80);
    CHECK(count_rows(s, "sam") == 3);
  }
}

TEST_CASE("store leases: the leases of a process known dead are released") {
  FOR_EACH_STORE(scratch) {
    auto& s = *scratch.store;
    REQUIRE(s.take_lease(lease_for(100, 1000, "gone-host-format"), k_lease_now)); // unparsable owner: dead
    REQUIRE(s.take_lease(lease_for(100, 1000, store::reservation_owner()), k_lease_now));
    auto released = s.release_orphaned(store::owner_may_be_alive);
    REQUIRE(released);
    CHECK(*released == 1);
  }
}

TEST_CASE("ledger writer: rows queued together share transactions and drain writes every one") {
  FOR_EACH_STORE(scratch) {
    store::LedgerWriter::Options options;
    options.max_delay = std::chrono::milliseconds(50);
    options.max_batch = 64;
    store::LedgerWriter writer(*scratch.store, {}, options);
    for (int i = 0; i < 300; ++i) {
      writer.append_row(0, lease_row("gina", 1, i));
    }
    CHECK(writer.drain() == 0);
    CHECK(count_rows(*scratch.store, "gina") == 300);
    CHECK(writer.largest_batch() > 1);
    CHECK(writer.largest_batch() <= 64);
    writer.append_row(0, lease_row("gina", 1, 300)); // after drain: written at once
    CHECK(count_rows(*scratch.store, "gina") == 301);
  }
}

TEST_CASE("ledger writer: a row is written within max_delay, not at shutdown") {
  FOR_EACH_STORE(scratch) {
    store::LedgerWriter writer(*scratch.store, {});
    writer.append_row(0, lease_row("hal", 5, 1));
    for (int i = 0; i < 200 && count_rows(*scratch.store, "hal") == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(count_rows(*scratch.store, "hal") == 1);
  }
}

TEST_CASE("ledger writer: a failing store keeps the rows queued, says so, and writes them once it recovers") {
  FOR_EACH_STORE(scratch) {
    FlakyLedger flaky(*scratch.store);
    flaky.broken = true;
    std::mutex seen_mutex;
    std::vector<std::string> failures;
    store::LedgerWriter::Reporting reporting{[&](const Error& error, std::size_t) {
                                               const std::lock_guard lock(seen_mutex);
                                               failures.push_back(error.message);
                                             },
                                             {}};
    store::LedgerWriter writer(flaky, reporting);
    for (int i = 0; i < 20; ++i) {
      writer.append_row(0, lease_row("ivy", 1, i));
    }
    CHECK_FALSE(writer.flush());
    CHECK(writer.failing());
    CHECK(writer.waiting() == 20);
    const auto reported = [&] {
      const std::lock_guard lock(seen_mutex);
      return !failures.empty();
    };
    for (int i = 0; i < 400 && !reported(); ++i) { // reported by the writer's thread, maybe just after flush
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    {
      const std::lock_guard lock(seen_mutex);
      REQUIRE_FALSE(failures.empty());
      CHECK(failures.front().find("disk is full") != std::string::npos);
    }
    flaky.broken = false;
    for (int i = 0; i < 200 && !writer.flush(); ++i) {
    }
    CHECK_FALSE(writer.failing());
    CHECK(count_rows(*scratch.store, "ivy") == 20);
  }
}

TEST_CASE("ledger writer: rows a failing store never takes are reported lost at drain, one by one") {
  FOR_EACH_STORE(scratch) {
    FlakyLedger flaky(*scratch.store);
    flaky.broken = true;
    std::vector<std::string> lost;
    store::LedgerWriter::Options options;
    options.drain_timeout = std::chrono::milliseconds(100);
    store::LedgerWriter writer(
        flaky,
        {{}, [&](const store::LedgerEntry& entry, const Error&) { lost.push_back(entry.row.request_id); }},
        options);
    for (int i = 0; i < 5; ++i) {
      writer.append_row(0, lease_row("jo", 1, i));
    }
    CHECK(writer.drain() == 5);
    CHECK(flaky.attempts > 1); // retried until the timeout
    REQUIRE(lost.size() == 5);
    CHECK(lost.front() == "req_lease_0");
    CHECK(count_rows(*scratch.store, "jo") == 0);
  }
}
