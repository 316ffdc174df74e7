// SPDX-License-Identifier: Apache-2.0
// usage-report over a seeded ledger: Store::usage and report::render per
// grouping and range, next to the same aggregation as a plain SELECT … GROUP BY
// over the raw ledger table, measured in the same run on the same file.
//
//   bench_report [ROWS]                     seed ROWS (default 1000000) into a scratch store, time
//   bench_report --ledger FILE              time over FILE, seeded earlier by --seed-direct
//   bench_report --seed-store STORE ROWS    seed STORE (a file or postgresql:// URI, as --db) through
//                                           Store::settle (the gateway's path); for tests
//   bench_report --seed-direct FILE ROWS    seed FILE with INSERTs in one transaction (see seed_direct),
//   printing
//                                           its rate next to Store::settle's
//
// Rows are deterministic for a given ROWS and UTC day: 200 subjects, 4 models,
// spread over the 30 days ending now.
#include <claudegate/base/duration.hpp>
#include <claudegate/store/open.hpp>
#include <claudegate/store/report.hpp>
#include <claudegate/store/sqlite.hpp>
#include <claudegate/store/store.hpp>

#include <fmt/core.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <unistd.h>
#include <vector>

using namespace claudegate;

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr std::int64_t k_day = 86'400;
constexpr int k_days = 30;
constexpr int k_subjects = 200;
constexpr std::int64_t k_default_rows = 1'000'000;
constexpr int k_runs = 3;

// ---- deterministic ledger rows ----------------------------------------------

// Rows come in time order, spread evenly over the 30 days, as the gateway
// appends them (a ledger's rowid order is its time order).
class LedgerRows {
public:
  LedgerRows(UnixSeconds now, std::int64_t rows)
      : m_now(now), m_rows(std::max<std::int64_t>(rows, 1)), m_random(42) {}

  store::UsageRecord next() {
    static const std::array<const char*, 4> models = {"claude-opus-4", "claude-sonnet-4", "claude-haiku-4",
                                                      "claude-3-5-haiku"};
    store::UsageRecord r;
    const auto subject = static_cast<int>(draw(k_subjects));
    r.at = m_now - k_days * k_day + 1 + m_count * (k_days * k_day) / m_rows;
    r.subject = fmt::format("user-{:03}", subject);
    r.model = models.at(static_cast<std::size_t>(draw(models.size())));
    r.jti = fmt::format("jti-{}", m_count);
    r.request_id = fmt::format("req-{}", m_count++);
    r.status = draw(50) == 0 ? 529 : 200;
    r.input_tokens = draw(20'000);
    r.output_tokens = draw(4'000);
    r.cache_read_tokens = draw(3) == 0 ? draw(10'000) : 0;
    r.cache_write_tokens = draw(10) == 0 ? draw(2'000) : 0;
    r.latency_ms = 200 + draw(5'000);
    r.stream = draw(2) == 0;
    if (subject % 4 != 0) {
      r.quota_limit = (subject % 4) * 2'500'000;
    }
    return r;
  }

private:
  std::int64_t draw(std::uint64_t bound) { return static_cast<std::int64_t>(m_random() % bound); }

  UnixSeconds m_now;
  std::int64_t m_rows;
  std::mt19937_64 m_random;
  std::int64_t m_count = 0;
};

// ---- sqlite3 handles ----------------------------------------------------------

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbClose>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

[[noreturn]] void die(const std::string& what) {
  fmt::print(stderr, "bench_report: {}\n", what);
  std::exit(1);
}

Db open_db(const std::filesystem::path& path, int flags) {
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(path.c_str(), &raw, flags, nullptr) != SQLITE_OK) {
    die(fmt::format("cannot open {}: {}", path.string(), raw ? sqlite3_errmsg(raw) : "out of memory"));
  }
  return Db(raw);
}

Stmt prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    die(fmt::format("prepare failed: {}: {}", sqlite3_errmsg(db), sql));
  }
  return Stmt(raw);
}

void exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    die(fmt::format("{}: {}", sql, sqlite3_errmsg(db)));
  }
}

void step_done(sqlite3* db, sqlite3_stmt* s) {
  if (sqlite3_step(s) != SQLITE_DONE) {
    die(fmt::format("insert failed: {}", sqlite3_errmsg(db)));
  }
  sqlite3_reset(s);
}

// ---- seeding --------------------------------------------------------------------

std::unique_ptr<store::Store> open_store(const std::filesystem::path& path) {
  auto opened = store::open_sqlite(path);
  if (!opened) {
    die(opened.error().message);
  }
  return std::move(*opened);
}

// The gateway's own path: one Store::settle (one durable transaction) per request.
double seed_store(const std::string& location, std::int64_t rows, UnixSeconds now) {
  auto where = store::parse_store_location(location);
  auto opened = where ? store::open_store(*where) : propagate(where);
  if (!opened) {
    die(opened.error().message);
  }
  auto store = std::move(*opened);
  LedgerRows source(now, rows);
  const auto start = SteadyClock::now();
  for (std::int64_t i = 0; i < rows; ++i) {
    if (auto settled = store->settle(0, source.next()); !settled) {
      die(settled.error().message);
    }
  }
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// The statements below mirror store_sqlite.cpp's ledger insert and its two
// rollup upserts, run in one transaction with the statements prepared once:
// settle() commits (and fsyncs) once per row, which for a million rows takes
// minutes. The rollups are summed in memory and upserted once per row of
// theirs (~25 000 daily rows, 200 subjects) instead of once per ledger row.
constexpr const char* k_insert_ledger =
    "INSERT INTO usage_ledger (at, subject, jti, model, status, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, latency_ms, request_id, stream, quota_limit) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr const char* k_upsert_daily =
    "INSERT INTO usage_daily (day, subject, model, requests, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (day, subject, model) DO UPDATE SET requests = usage_daily.requests + excluded.requests, "
    "input_tokens = usage_daily.input_tokens + excluded.input_tokens, "
    "output_tokens = usage_daily.output_tokens + excluded.output_tokens, "
    "cache_read_tokens = usage_daily.cache_read_tokens + excluded.cache_read_tokens, "
    "cache_write_tokens = usage_daily.cache_write_tokens + excluded.cache_write_tokens";
constexpr const char* k_upsert_subject =
    "INSERT INTO usage_subjects (subject, last_at, quota_limit) VALUES (?, ?, ?) "
    "ON CONFLICT (subject) DO UPDATE SET last_at = excluded.last_at, quota_limit = excluded.quota_limit "
    "WHERE excluded.last_at >= usage_subjects.last_at";

void bind_text(sqlite3_stmt* s, int index, const std::string& text) {
  sqlite3_bind_text(s, index, text.c_str(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

void bind_limit(sqlite3_stmt* s, int index, const std::optional<std::int64_t>& limit) {
  if (limit) {
    sqlite3_bind_int64(s, index, *limit);
  } else {
    sqlite3_bind_null(s, index);
  }
}

void insert_ledger(sqlite3* db, sqlite3_stmt* l, const store::UsageRecord& r) {
  sqlite3_bind_int64(l, 1, r.at);
  bind_text(l, 2, r.subject);
  bind_text(l, 3, r.jti);
  bind_text(l, 4, r.model);
  sqlite3_bind_int64(l, 5, r.status);
  const std::array<std::int64_t, 5> counts = {r.input_tokens, r.output_tokens, r.cache_read_tokens,
                                              r.cache_write_tokens, r.latency_ms};
  for (std::size_t i = 0; i < counts.size(); ++i) {
    sqlite3_bind_int64(l, static_cast<int>(6 + i), counts[i]);
  }
  bind_text(l, 11, r.request_id);
  sqlite3_bind_int64(l, 12, r.stream ? 1 : 0);
  bind_limit(l, 13, r.quota_limit);
  step_done(db, l);
}

// usage_daily and usage_subjects as settle() would leave them, summed in memory.
class Rollups {
public:
  void add(const store::UsageRecord& r) {
    auto& sums = m_daily[{duration::utc_day_start(r.at), r.subject, r.model}];
    const std::array<std::int64_t, 5> counts = {1, r.input_tokens, r.output_tokens, r.cache_read_tokens,
                                                r.cache_write_tokens};
    for (std::size_t i = 0; i < counts.size(); ++i) {
      sums[i] += counts[i];
    }
    auto [latest, fresh] = m_subjects.try_emplace(r.subject, r.at, r.quota_limit);
    if (!fresh && r.at >= latest->second.first) {
      latest->second = {r.at, r.quota_limit};
    }
  }

  void write(sqlite3* db) const {
    Stmt daily = prepare(db, k_upsert_daily);
    for (const auto& [key, sums] : m_daily) {
      sqlite3_bind_int64(daily.get(), 1, std::get<0>(key));
      bind_text(daily.get(), 2, std::get<1>(key));
      bind_text(daily.get(), 3, std::get<2>(key));
      for (std::size_t i = 0; i < sums.size(); ++i) {
        sqlite3_bind_int64(daily.get(), static_cast<int>(4 + i), sums[i]);
      }
      step_done(db, daily.get());
    }
    Stmt subject = prepare(db, k_upsert_subject);
    for (const auto& [name, latest] : m_subjects) {
      bind_text(subject.get(), 1, name);
      sqlite3_bind_int64(subject.get(), 2, latest.first);
      bind_limit(subject.get(), 3, latest.second);
      step_done(db, subject.get());
    }
  }

private:
  std::map<std::tuple<UnixSeconds, std::string, std::string>, std::array<std::int64_t, 5>> m_daily;
  std::map<std::string, std::pair<UnixSeconds, std::optional<std::int64_t>>> m_subjects;
};

double seed_direct(const std::filesystem::path& path, std::int64_t rows, UnixSeconds now) {
  open_store(path).reset(); // creates the schema
  Db db = open_db(path, SQLITE_OPEN_READWRITE);
  Stmt ledger = prepare(db.get(), k_insert_ledger);
  Rollups rollups;
  LedgerRows source(now, rows);
  const auto start = SteadyClock::now();
  // A scratch file nobody else has open: no fsync, and a page cache that
  // holds the indexes' hot pages (bench only; the store never does this).
  exec(db.get(), "PRAGMA synchronous = OFF");
  exec(db.get(), "PRAGMA cache_size = -262144");
  exec(db.get(), "BEGIN");
  for (std::int64_t i = 0; i < rows; ++i) {
    const auto row = source.next();
    insert_ledger(db.get(), ledger.get(), row);
    rollups.add(row);
  }
  rollups.write(db.get());
  exec(db.get(), "COMMIT");
  exec(db.get(), "PRAGMA wal_checkpoint(TRUNCATE)");
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// ---- timing -------------------------------------------------------------------

// Median wall time of `k_runs` runs of `op`, in milliseconds.
double median_ms(const std::function<void()>& op) {
  std::vector<double> times;
  for (int i = 0; i < k_runs; ++i) {
    const auto start = SteadyClock::now();
    op();
    times.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

struct Totals {
  std::int64_t groups = 0;
  std::int64_t requests = 0;
  std::int64_t tokens = 0;
  bool operator==(const Totals&) const = default;
};

std::string group_sql(const std::vector<store::GroupBy>& keys) {
  std::string out;
  for (auto key : keys) {
    out += out.empty() ? "" : ", ";
    out += key == store::GroupBy::sub ? "subject" : key == store::GroupBy::day ? "at / 86400" : "model";
  }
  return out;
}

// The reference: the aggregation written plainly over the raw ledger.
Totals raw_group_by(sqlite3* db, const store::UsageQuery& q) {
  const std::string keys = group_sql(q.group_by);
  const std::string sql = fmt::format(
      "SELECT {}{}COUNT(*), SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens) "
      "FROM usage_ledger WHERE at >= ? AND at < ?{}",
      keys, keys.empty() ? "" : ", ", keys.empty() ? "" : " GROUP BY " + keys);
  Stmt s = prepare(db, sql);
  sqlite3_bind_int64(s.get(), 1, *q.since);
  sqlite3_bind_int64(s.get(), 2, *q.until);
  Totals totals;
  const int first = static_cast<int>(q.group_by.size());
  while (sqlite3_step(s.get()) == SQLITE_ROW) {
    const std::int64_t count = sqlite3_column_int64(s.get(), first);
    totals.groups += count != 0 ? 1 : 0;
    totals.requests += count;
    totals.tokens += sqlite3_column_int64(s.get(), first + 1);
  }
  return totals;
}

Totals store_usage(store::Store& st, const store::UsageQuery& q, std::vector<store::UsageRow>& rows) {
  auto answered = st.usage(q);
  if (!answered) {
    die(answered.error().message);
  }
  rows = std::move(*answered);
  Totals totals;
  for (const auto& row : rows) {
    totals.groups += row.requests != 0 ? 1 : 0;
    totals.requests += row.requests;
    totals.tokens += row.total_tokens();
  }
  return totals;
}

struct Range {
  const char* name;
  UnixSeconds since;
  UnixSeconds until;
};

std::vector<Range> ranges(UnixSeconds now) {
  const UnixSeconds today = duration::utc_day_start(now);
  return {
      {"today (day-aligned)", today, today + k_day},
      {"31 days (day-aligned)", today - k_days * k_day, today + k_day},
      {"30 days (unaligned)", now - k_days * k_day + 4321, now - 1234},
      {"7 days (unaligned)", now - 7 * k_day + 4321, now - 1234},
  };
}

const std::vector<std::pair<const char*, std::vector<store::GroupBy>>>& groupings() {
  using store::GroupBy;
  static const std::vector<std::pair<const char*, std::vector<GroupBy>>> k_groupings = {
      {"total", {}},
      {"sub", {GroupBy::sub}},
      {"day", {GroupBy::day}},
      {"sub,day,model", {GroupBy::sub, GroupBy::day, GroupBy::model}},
  };
  return k_groupings;
}

// Time one case; returns false when the store disagrees with the reference.
bool bench_case(store::Store& st, sqlite3* raw, const Range& range, const char* name,
                const std::vector<store::GroupBy>& keys) {
  const store::UsageQuery q{range.since, range.until, std::nullopt, std::nullopt, keys};
  std::vector<store::UsageRow> rows;
  Totals mine;
  Totals reference;
  const double store_ms = median_ms([&] { mine = store_usage(st, q, rows); });
  const double raw_ms = median_ms([&] { reference = raw_group_by(raw, q); });
  fmt::print("{:<22} {:<14} {:>6} {:>8.1f} {:>10.1f} {:>7.1f}x", range.name, name, mine.groups, store_ms,
             raw_ms, raw_ms / std::max(store_ms, 0.001));
  for (auto format : {report::Format::table, report::Format::json, report::Format::csv}) {
    report::Options options;
    options.group_by = keys;
    options.format = format;
    fmt::print(" {:>6.1f}", median_ms([&] { report::render(rows, options, {}); }));
  }
  fmt::print(" {}\n", mine == reference ? "equal" : "DIFFERENT");
  return mine == reference;
}

// Time every range and grouping over the ledger at `path`; false when a total differs.
bool bench_ledger(const std::filesystem::path& path, UnixSeconds now) {
  auto st = open_store(path);
  Db raw = open_db(path, SQLITE_OPEN_READONLY);
  fmt::print("\nmedian of {} runs, ms; reference = plain SELECT … GROUP BY over usage_ledger; render = "
             "report::render of usage()'s rows\n",
             k_runs);
  fmt::print("{:<22} {:<14} {:>6} {:>8} {:>10} {:>8} {:>6} {:>6} {:>6} {}\n", "range", "--by", "groups",
             "usage()", "reference", "speedup", "table", "json", "csv", "totals");
  bool all_equal = true;
  for (const auto& range : ranges(now)) {
    for (const auto& [name, keys] : groupings()) {
      all_equal = bench_case(*st, raw.get(), range, name, keys) && all_equal;
    }
  }
  return all_equal;
}

// Seed `path` with INSERTs in one transaction and print its rate next to Store::settle's
// on a small sample (a scratch file), the path the gateway itself takes.
void seed_and_compare(const std::filesystem::path& path, std::int64_t rows, UnixSeconds now) {
  const auto scratch = std::filesystem::temp_directory_path() / fmt::format("bench_report-{}", ::getpid());
  std::filesystem::create_directories(scratch);
  const std::int64_t sample = std::min<std::int64_t>(rows, 2'000);
  const double settle_s = seed_store(scratch / "settle.db", sample, now);
  std::filesystem::remove_all(scratch);
  const double settle_rate = static_cast<double>(sample) / settle_s;
  fmt::print("seed via Store::settle: {:.0f} rows/s ({} rows, one durable transaction each): {} rows would "
             "take {:.0f} s\n",
             settle_rate, sample, rows, static_cast<double>(rows) / settle_rate);
  const double direct_s = seed_direct(path, rows, now);
  fmt::print("seed via INSERTs in one transaction: {} rows in {:.1f} s = {:.0f} rows/s; file {:.0f} MB\n",
             rows, direct_s, static_cast<double>(rows) / direct_s,
             static_cast<double>(std::filesystem::file_size(path)) / 1e6);
}

int run_bench(std::int64_t rows, UnixSeconds now) {
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("bench_report-ledger-{}", ::getpid());
  std::filesystem::create_directories(dir);
  seed_and_compare(dir / "claudegate.db", rows, now);
  const bool all_equal = bench_ledger(dir / "claudegate.db", now);
  std::filesystem::remove_all(dir);
  return all_equal ? 0 : 1;
}

std::int64_t rows_argument(const char* text) {
  char* end = nullptr;
  const long long rows = std::strtoll(text, &end, 10);
  if (*end != '\0' || rows <= 0) {
    die(fmt::format("ROWS must be a positive number, not \"{}\"", text));
  }
  return rows;
}

} // namespace

int main(int argc, char** argv) {
  const UnixSeconds now = std::time(nullptr);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 3 && args[0] == "--seed-store") {
    seed_store(args[1], rows_argument(argv[3]), now);
    return 0;
  }
  if (args.size() == 3 && args[0] == "--seed-direct") {
    seed_and_compare(args[1], rows_argument(argv[3]), now);
    return 0;
  }
  if (args.size() == 2 && args[0] == "--ledger") {
    return bench_ledger(args[1], now) ? 0 : 1;
  }
  if (args.size() > 1 || (args.size() == 1 && args[0].starts_with("-"))) {
    die("usage: bench_report [ROWS] | --ledger FILE | --seed-store FILE ROWS | --seed-direct FILE ROWS");
  }
  return run_bench(args.empty() ? k_default_rows : rows_argument(argv[1]), now);
}
