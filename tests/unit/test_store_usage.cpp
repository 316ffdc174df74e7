// SPDX-License-Identifier: Apache-2.0
// Store::usage (whole days from the rollup, partial edge days from the
// ledger, summed in C++) against a plain SELECT … GROUP BY … ORDER BY over
// the raw ledger, for unaligned ranges across day edges and every grouping.
#include "claudegate/base/duration.hpp"
#include "claudegate/store/sqlite.hpp"
#include "claudegate/store/store.hpp"

#include "scratch_dir.hpp"
#include "store_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <random>
#include <string>
#include <vector>

using namespace claudegate;

namespace {

constexpr UnixSeconds k_usage_now = 1'750'000'000;
constexpr UnixSeconds k_usage_day = 86'400;
const UnixSeconds k_usage_first_day = duration::utc_day_start(k_usage_now) - 4 * k_usage_day;

std::string key_sql(store::GroupBy key, test::Backend backend) {
  const bool pg = backend == test::Backend::postgresql;
  switch (key) {
  case store::GroupBy::sub:
    return pg ? "subject COLLATE \"C\"" : "subject";
  case store::GroupBy::day:
    return pg ? "to_char(to_timestamp(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
              : "strftime('%Y-%m-%d', at, 'unixepoch')";
  case store::GroupBy::model:
    return pg ? "model COLLATE \"C\"" : "model";
  }
  return "subject";
}

// The rows of `sql` on `scratch`'s database, one line per row, columns
// joined by "|" (NULL as 0: a SUM over no rows).
std::string rows_of(const test::ScratchStore& scratch, const std::string& sql) {
  std::string out;
  if (scratch.backend == test::Backend::postgresql) {
    auto result = test::pg_exec(scratch.database->uri(), sql);
    REQUIRE(result);
    for (int row = 0; row < PQntuples(result.get()); ++row) {
      for (int i = 0; i < PQnfields(result.get()); ++i) {
        out += i == 0 ? "" : "|";
        out += PQgetisnull(result.get(), row, i) ? "0" : PQgetvalue(result.get(), row, i);
      }
      out += "\n";
    }
    return out;
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(scratch.path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
  while (sqlite3_step(statement) == SQLITE_ROW) {
    for (int i = 0; i < sqlite3_column_count(statement); ++i) {
      out += i == 0 ? "" : "|";
      const auto* text = sqlite3_column_text(statement, i);
      out += text != nullptr ? reinterpret_cast<const char*>(text) : "0";
    }
    out += "\n";
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return out;
}

// One line per group, "keys|requests|input|output|cache_read|cache_write",
// from the raw ledger in [since, until), ordered by the keys.
std::string reference(const test::ScratchStore& scratch, UnixSeconds since, UnixSeconds until,
                      const std::vector<store::GroupBy>& group_by) {
  std::string keys;
  for (auto key : group_by) {
    keys += (keys.empty() ? "" : ", ") + key_sql(key, scratch.backend);
  }
  return rows_of(scratch, fmt::format("SELECT {}{}COUNT(*), SUM(input_tokens), SUM(output_tokens), "
                                      "SUM(cache_read_tokens), SUM(cache_write_tokens) FROM usage_ledger "
                                      "WHERE at >= {} AND at < {}{}",
                                      keys, keys.empty() ? "" : ", ", since, until,
                                      keys.empty() ? "" : " GROUP BY " + keys + " ORDER BY " + keys));
}

std::string lines_of(const std::vector<store::UsageRow>& rows, const std::vector<store::GroupBy>& group_by) {
  std::string out;
  for (const auto& row : rows) {
    for (auto key : group_by) {
      out += key == store::GroupBy::sub ? row.subject : key == store::GroupBy::day ? row.day : row.model;
      out += "|";
    }
    out += fmt::format("{}|{}|{}|{}|{}\n", row.requests, row.input_tokens, row.output_tokens,
                       row.cache_read_tokens, row.cache_write_tokens);
  }
  return out;
}

// 400 rows over five days for `subjects`, some on a day's first and last
// second, where an off-by-one would show.
std::vector<store::UsageRecord> random_rows(const std::vector<std::string>& subjects) {
  std::mt19937 random(11);
  const std::vector<std::string> models = {"haiku", "sonnet", "opus"};
  std::vector<store::UsageRecord> rows;
  for (int i = 0; i < 400; ++i) {
    store::UsageRecord r;
    const auto offset = static_cast<UnixSeconds>(random() % (5 * k_usage_day));
    r.at = k_usage_first_day + (i % 10 == 0 ? (offset / k_usage_day) * k_usage_day : offset)
           - (i % 10 == 1 ? 1 : 0);
    r.subject = subjects[random() % subjects.size()];
    r.model = models[random() % models.size()];
    r.jti = "j" + std::to_string(i);
    r.request_id = "r" + std::to_string(i);
    r.status = 200;
    r.input_tokens = static_cast<std::int64_t>(random() % 1000);
    r.output_tokens = static_cast<std::int64_t>(random() % 300);
    r.cache_read_tokens = static_cast<std::int64_t>(random() % 50);
    r.cache_write_tokens = static_cast<std::int64_t>(random() % 20);
    r.quota_limit = i % 7 == 0 ? std::nullopt : std::optional<std::int64_t>(1000 * i);
    rows.push_back(std::move(r));
  }
  return rows;
}

// Store::usage over unaligned ranges and every grouping equals a plain
// GROUP BY over `scratch`'s raw ledger.
void check_usage_against_ledger(test::ScratchStore& scratch) {
  using store::GroupBy;
  const std::vector<std::vector<GroupBy>> groupings = {{},
                                                       {GroupBy::sub},
                                                       {GroupBy::day},
                                                       {GroupBy::model, GroupBy::sub},
                                                       {GroupBy::sub, GroupBy::day, GroupBy::model}};
  const std::vector<std::pair<UnixSeconds, UnixSeconds>> ranges = {
      {k_usage_first_day + 4321, k_usage_first_day + 4 * k_usage_day - 1234},     // both edges partial
      {k_usage_first_day, k_usage_first_day + 3 * k_usage_day},                   // aligned: rollup only
      {k_usage_first_day + 1, k_usage_first_day + 2 * k_usage_day},               // partial first day
      {k_usage_first_day + k_usage_day, k_usage_first_day + 3 * k_usage_day + 1}, // partial last day
      {k_usage_first_day + 100, k_usage_first_day + 200 + k_usage_day}, // two partial days, no whole one
      {k_usage_first_day + 100, k_usage_first_day + 5000},              // inside one day
      {k_usage_first_day - 10 * k_usage_day, k_usage_first_day - 5 * k_usage_day}, // no rows
  };
  for (const auto& [since, until] : ranges) {
    for (const auto& grouping : groupings) {
      CAPTURE(since);
      CAPTURE(until);
      CAPTURE(grouping.size());
      auto rows = scratch.store->usage({since, until, std::nullopt, std::nullopt, grouping});
      REQUIRE(rows);
      CHECK(lines_of(*rows, grouping) == reference(scratch, since, until, grouping));
    }
  }
}

} // namespace

TEST_CASE("store usage: unaligned ranges across day edges equal a plain GROUP BY over the ledger") {
  FOR_EACH_STORE(scratch) {
    for (const auto& row : random_rows({"alice", "bob", "carol", "Dave", "é-user"})) {
      REQUIRE(scratch.store->settle(0, row));
    }
    check_usage_against_ledger(scratch);
  }
}

TEST_CASE("store usage: one ledger batch of any size and any names sums as the rows one by one") {
  // Names a batch's array encoding must carry intact: quotes, backslashes,
  // commas, braces, spaces, the word NULL, the empty string.
  const std::vector<std::string> subjects = {"a\"b",       "back\\slash", "x,y", "{brace}",
                                             "with space", "NULL",        "",    "é-user"};
  FOR_EACH_STORE(scratch) {
    const auto rows = random_rows(subjects);
    std::vector<store::LedgerEntry> batch;
    for (const auto& row : rows) {
      batch.push_back(store::LedgerEntry{store::LedgerEntry::Kind::row, 0, 0, row});
    }
    REQUIRE(scratch.store->write_ledger(batch));
    check_usage_against_ledger(scratch);
    CHECK(rows_of(scratch, "SELECT COUNT(DISTINCT subject) FROM usage_ledger") == "8\n");
    // Each subject's limit is its latest row's (the last of equal times).
    auto quotas = scratch.store->subject_quotas(k_usage_now);
    REQUIRE(quotas);
    REQUIRE(quotas->size() == subjects.size());
    for (const auto& quota : *quotas) {
      const store::UsageRecord* latest = nullptr;
      for (const auto& row : rows) {
        if (row.subject == quota.subject && (latest == nullptr || row.at >= latest->at)) {
          latest = &row;
        }
      }
      REQUIRE(latest != nullptr);
      CAPTURE(quota.subject);
      CHECK(quota.limit == latest->quota_limit);
    }
  }
}
