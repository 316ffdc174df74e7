// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store.hpp"

#include "sqlite_util.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

namespace claudegate::store {

namespace {

using sqlite::Connection;
using sqlite::Query;
using sqlite::Transaction;

constexpr int k_schema_version = 2;
constexpr int k_busy_timeout_ms = 30'000;
constexpr std::int64_t k_day_seconds = 86'400;
constexpr auto k_wal_retry_pause = std::chrono::milliseconds(10);
constexpr std::string_view k_reuse_reason = "refresh token reuse";

// Forward-only migrations: k_migrations[n] takes a store from version n to n + 1.
// DDL is SQLite's; the DML below sticks to SQL that PostgreSQL also runs.
constexpr std::array<std::string_view, k_schema_version> k_migrations = {R"sql(
CREATE TABLE refresh_families (
  family_id      TEXT PRIMARY KEY,
  subject        TEXT NOT NULL,
  grant_json     TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  revoked_at     INTEGER,
  revoked_reason TEXT
);
CREATE INDEX refresh_families_by_subject ON refresh_families (subject);

CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  family_id  TEXT NOT NULL REFERENCES refresh_families (family_id) ON DELETE CASCADE,
  generation INTEGER NOT NULL,
  state      TEXT NOT NULL CHECK (state IN ('active', 'used', 'revoked')),
  issued_at  INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at    INTEGER,
  UNIQUE (family_id, generation)
);
-- At most one active token per family: two rotations of one token can never both succeed.
CREATE UNIQUE INDEX refresh_tokens_one_active ON refresh_tokens (family_id) WHERE state = 'active';

CREATE TABLE revoked_jtis (
  jti        TEXT PRIMARY KEY,
  subject    TEXT NOT NULL,
  reason     TEXT NOT NULL,
  revoked_at INTEGER NOT NULL,
  expires_at INTEGER
);
CREATE INDEX revoked_jtis_by_expiry ON revoked_jtis (expires_at);

CREATE TABLE subject_cutoffs (
  subject    TEXT PRIMARY KEY,
  cutoff     INTEGER NOT NULL,
  reason     TEXT NOT NULL,
  revoked_at INTEGER NOT NULL
);

CREATE TABLE usage_ledger (
  id                 INTEGER PRIMARY KEY,
  at                 INTEGER NOT NULL,
  subject            TEXT NOT NULL,
  jti                TEXT NOT NULL,
  model              TEXT NOT NULL,
  status             INTEGER NOT NULL,
  input_tokens       INTEGER NOT NULL,
  output_tokens      INTEGER NOT NULL,
  cache_read_tokens  INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  latency_ms         INTEGER NOT NULL,
  request_id         TEXT NOT NULL,
  stream             INTEGER NOT NULL,
  quota_limit        INTEGER
);
CREATE INDEX usage_ledger_by_at ON usage_ledger (at);
CREATE INDEX usage_ledger_by_subject_at ON usage_ledger (subject, at);

-- Sums per (UTC day, subject, model), kept in each ledger insert's transaction,
-- so quotas and day-aligned reports never scan the ledger.
CREATE TABLE usage_daily (
  day                INTEGER NOT NULL,
  subject            TEXT NOT NULL,
  model              TEXT NOT NULL,
  requests           INTEGER NOT NULL,
  input_tokens       INTEGER NOT NULL,
  output_tokens      INTEGER NOT NULL,
  cache_read_tokens  INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  PRIMARY KEY (day, subject, model)
);
CREATE INDEX usage_daily_by_subject ON usage_daily (subject, day);

-- The latest request of each subject, for the limit shown in reports.
CREATE TABLE usage_subjects (
  subject     TEXT PRIMARY KEY,
  last_at     INTEGER NOT NULL,
  quota_limit INTEGER
);

CREATE TABLE quota_reservations (
  id         INTEGER PRIMARY KEY,
  subject    TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  estimate   INTEGER NOT NULL
);
CREATE INDEX quota_reservations_by_subject ON quota_reservations (subject, created_at);

CREATE TABLE audit_events (
  id      INTEGER PRIMARY KEY,
  at      INTEGER NOT NULL,
  kind    TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail  TEXT NOT NULL
);
CREATE INDEX audit_events_by_at ON audit_events (at);
)sql",
                                                                         R"sql(
-- A counter every revocation write moves on, by trigger, so even a row
-- written with the sqlite3 shell counts: a process caching verified tokens
-- rechecks them once it changes (SPEC §5).
CREATE TABLE revocation_epoch (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  epoch INTEGER NOT NULL
);
INSERT INTO revocation_epoch (id, epoch) VALUES (1, 0);
CREATE TRIGGER revoked_jtis_insert_epoch AFTER INSERT ON revoked_jtis
  BEGIN UPDATE revocation_epoch SET epoch = epoch + 1; END;
CREATE TRIGGER revoked_jtis_update_epoch AFTER UPDATE ON revoked_jtis
  BEGIN UPDATE revocation_epoch SET epoch = epoch + 1; END;
CREATE TRIGGER subject_cutoffs_insert_epoch AFTER INSERT ON subject_cutoffs
  BEGIN UPDATE revocation_epoch SET epoch = epoch + 1; END;
CREATE TRIGGER subject_cutoffs_update_epoch AFTER UPDATE ON subject_cutoffs
  BEGIN UPDATE revocation_epoch SET epoch = epoch + 1; END;
CREATE TRIGGER refresh_families_revoke_epoch AFTER UPDATE OF revoked_at ON refresh_families
  BEGIN UPDATE revocation_epoch SET epoch = epoch + 1; END;
)sql"};

// ---- SQL, one place per statement -------------------------------------------

namespace sql {
const std::string k_insert_family =
    "INSERT INTO refresh_families (family_id, subject, grant_json, created_at, "
    "expires_at) VALUES (?, ?, ?, ?, ?)";
const std::string k_insert_token = "INSERT INTO refresh_tokens (token_hash, family_id, generation, state, "
                                   "issued_at, expires_at) VALUES (?, ?, ?, 'active', ?, ?)";
const std::string k_find_presented =
    "SELECT t.family_id, t.generation, t.state, t.expires_at, f.subject, f.grant_json, f.expires_at, "
    "f.revoked_at FROM refresh_tokens t JOIN refresh_families f ON f.family_id = t.family_id "
    "WHERE t.token_hash = ?";
const std::string k_mark_used =
    "UPDATE refresh_tokens SET state = 'used', used_at = ? WHERE token_hash = ? AND state = 'active'";
const std::string k_family_of = "SELECT family_id FROM refresh_tokens WHERE token_hash = ?";
const std::string k_revoke_family = "UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? "
                                    "WHERE family_id = ? AND revoked_at IS NULL";
const std::string k_revoke_family_tokens =
    "UPDATE refresh_tokens SET state = 'revoked' WHERE family_id = ? AND state = 'active'";
const std::string k_family_exists = "SELECT 1 FROM refresh_families WHERE family_id = ?";
const std::string k_insert_audit = "INSERT INTO audit_events (at, kind, subject, detail) VALUES (?, ?, ?, ?)";

const std::string k_revoke_jti =
    "INSERT INTO revoked_jtis (jti, subject, reason, revoked_at, expires_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (jti) DO UPDATE SET expires_at = COALESCE(revoked_jtis.expires_at, excluded.expires_at)";
const std::string k_revoke_subject =
    "INSERT INTO subject_cutoffs (subject, cutoff, reason, revoked_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (subject) DO UPDATE SET cutoff = excluded.cutoff, reason = excluded.reason, "
    "revoked_at = excluded.revoked_at WHERE excluded.cutoff > subject_cutoffs.cutoff";
const std::string k_revocation_epoch = "SELECT epoch FROM revocation_epoch WHERE id = 1";
const std::string k_find_jti = "SELECT reason, revoked_at, expires_at FROM revoked_jtis WHERE jti = ?";
const std::string k_find_cutoff =
    "SELECT reason, revoked_at FROM subject_cutoffs WHERE subject = ? AND cutoff >= ?";
const std::string k_find_family_revoked =
    "SELECT revoked_reason, revoked_at FROM refresh_families WHERE family_id = ? AND revoked_at IS NOT NULL";
const std::string k_list_revocations =
    "SELECT 'jti', jti, reason, revoked_at, expires_at FROM revoked_jtis "
    "UNION ALL SELECT 'subject', subject, reason, revoked_at, NULL FROM subject_cutoffs "
    "UNION ALL SELECT 'family', family_id, revoked_reason, revoked_at, NULL FROM refresh_families "
    "WHERE revoked_at IS NOT NULL ORDER BY 4 DESC, 1, 2";
const std::string k_prune = "DELETE FROM revoked_jtis WHERE expires_at IS NOT NULL AND expires_at < ?";

const std::string k_used_on_day =
    "SELECT COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0) "
    "FROM usage_daily WHERE day = ? AND subject = ?";
const std::string k_reserved_since =
    "SELECT COALESCE(SUM(estimate), 0) FROM quota_reservations WHERE subject = ? AND created_at >= ?";
const std::string k_drop_stale_reservations =
    "DELETE FROM quota_reservations WHERE subject = ? AND created_at < ?";
const std::string k_insert_reservation =
    "INSERT INTO quota_reservations (subject, created_at, estimate) VALUES (?, ?, ?) RETURNING id";
const std::string k_delete_reservation = "DELETE FROM quota_reservations WHERE id = ?";
const std::string k_insert_usage =
    "INSERT INTO usage_ledger (at, subject, jti, model, status, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, latency_ms, request_id, stream, quota_limit) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const std::string k_upsert_daily =
    "INSERT INTO usage_daily (day, subject, model, requests, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens) VALUES (?, ?, ?, 1, ?, ?, ?, ?) "
    "ON CONFLICT (day, subject, model) DO UPDATE SET requests = usage_daily.requests + 1, "
    "input_tokens = usage_daily.input_tokens + excluded.input_tokens, "
    "output_tokens = usage_daily.output_tokens + excluded.output_tokens, "
    "cache_read_tokens = usage_daily.cache_read_tokens + excluded.cache_read_tokens, "
    "cache_write_tokens = usage_daily.cache_write_tokens + excluded.cache_write_tokens";
const std::string k_upsert_subject =
    "INSERT INTO usage_subjects (subject, last_at, quota_limit) VALUES (?, ?, ?) "
    "ON CONFLICT (subject) DO UPDATE SET last_at = excluded.last_at, quota_limit = excluded.quota_limit "
    "WHERE excluded.last_at >= usage_subjects.last_at";
const std::string k_subject_quotas =
    "SELECT s.subject, s.quota_limit, (SELECT COALESCE(SUM(d.input_tokens + d.output_tokens + "
    "d.cache_read_tokens + d.cache_write_tokens), 0) FROM usage_daily d WHERE d.day = ? AND "
    "d.subject = s.subject) FROM usage_subjects s ORDER BY s.subject";
} // namespace sql

// ---- small helpers ------------------------------------------------------------

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

template <typename T> std::unexpected<Error> propagate(const Result<T>& result) {
  return std::unexpected(result.error());
}

// Run `sql` with `bind` applied, to completion.
template <typename Bind> Result<void> run(Connection& db, const std::string& sql, Bind&& bind) {
  auto query = db.prepare(sql);
  if (!query) {
    return propagate(query);
  }
  bind(*query);
  return query->run();
}

// The single integer `sql` returns with `bind` applied (0 when no row).
template <typename Bind> Result<std::int64_t> single(Connection& db, const std::string& sql, Bind&& bind) {
  auto query = db.prepare(sql);
  if (!query) {
    return propagate(query);
  }
  bind(*query);
  auto row = query->step();
  if (!row) {
    return propagate(row);
  }
  const std::int64_t value = *row ? query->integer(0) : 0;
  // Step to the end: an INSERT … RETURNING is only complete at SQLITE_DONE.
  auto finished = *row ? query->run() : Result<void>{};
  return finished ? Result<std::int64_t>(value) : propagate(finished);
}

// ---- opening ------------------------------------------------------------------

// Create `path` with mode 0600 when missing, so SQLite (and its -wal/-shm,
// which copy the mode) never makes it world-readable under a loose umask.
Result<void> create_private_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return {};
  }
  if (errno == EEXIST) {
    return {};
  }
  return fail(Errc::io,
              fmt::format("cannot create store {} ({}); check that its folder exists and is writable",
                          path.string(), std::generic_category().message(errno)));
}

Result<void> refuse_newer(const Connection& db, std::int64_t version) {
  if (version <= k_schema_version) {
    return {};
  }
  return fail(Errc::storage,
              fmt::format("store {} was written by a newer claudegate (schema version {}, this "
                          "build knows up to {}); upgrade claudegate. The file was not changed.",
                          db.path(), version, k_schema_version));
}

// WAL lets readers run beside the one writer. Switching needs an exclusive
// lock, which a concurrent first open can hold: retry until the busy timeout.
Result<void> enable_wal(Connection& db) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(k_busy_timeout_ms);
  for (;;) {
    auto query = db.prepare("PRAGMA journal_mode = WAL");
    auto row = query ? query->step() : propagate(query);
    if (row) {
      return {};
    }
    const bool busy = (sqlite3_errcode(db.get()) & 0xff) == SQLITE_BUSY;
    if (!busy || std::chrono::steady_clock::now() > deadline) {
      return propagate(row);
    }
    std::this_thread::sleep_for(k_wal_retry_pause);
  }
}

// Apply the missing migrations in one BEGIN IMMEDIATE, re-reading the version
// under the write lock so concurrent first opens migrate exactly once.
Result<void> migrate(Connection& db) {
  auto tx = Transaction::begin_immediate(db);
  if (!tx) {
    return propagate(tx);
  }
  auto version = db.scalar("PRAGMA user_version");
  if (!version) {
    return propagate(version);
  }
  if (auto newer = refuse_newer(db, *version); !newer) {
    return newer;
  }
  for (auto step = static_cast<std::size_t>(*version); step < k_migrations.size(); ++step) {
    if (auto applied = db.exec(std::string(k_migrations[step])); !applied) {
      return applied;
    }
  }
  if (auto stamped = db.exec(fmt::format("PRAGMA user_version = {}", k_schema_version)); !stamped) {
    return stamped;
  }
  return tx->commit();
}

// Connection settings, then the schema. The version is checked before
// anything writes, so a newer store is refused unaltered.
Result<void> prepare_connection(Connection& db) {
  sqlite3_busy_timeout(db.get(), k_busy_timeout_ms);
  auto version = db.scalar("PRAGMA user_version");
  if (!version) {
    return std::unexpected(db.error("read", sqlite3_extended_errcode(db.get())));
  }
  if (auto newer = refuse_newer(db, *version); !newer) {
    return newer;
  }
  for (const char* pragma : {"PRAGMA foreign_keys = ON", "PRAGMA synchronous = FULL"}) {
    if (auto set = db.exec(pragma); !set) {
      return set;
    }
  }
  // Reading the schema surfaces a damaged file now, not at the first query.
  if (auto schema = db.scalar("SELECT COUNT(*) FROM sqlite_schema"); !schema) {
    return propagate(schema);
  }
  if (auto wal = enable_wal(db); !wal) {
    return wal;
  }
  return *version == k_schema_version ? Result<void>{} : migrate(db);
}

// SQLite keeps using a file deleted or replaced under it (the open inode
// lives on): usage written there vanishes and revocations written to the new
// file go unseen. Refuse instead.
Result<void> check_in_place(const Connection& db) {
  int moved = 0;
  if (sqlite3_file_control(db.get(), "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK || moved == 0) {
    return {};
  }
  return fail(Errc::storage,
              fmt::format("store {} was deleted or replaced while in use, so nothing was read "
                          "or written; put the file back, or restart claudegate to use the new one",
                          db.path()));
}

// ---- rows -----------------------------------------------------------------------

struct PresentedToken {
  std::string family_id;
  int generation = 0;
  std::string state;
  UnixSeconds expires_at = 0;
  std::string subject;
  std::string grant_json;
  UnixSeconds family_expires_at = 0;
  bool family_revoked = false;
};

Result<std::optional<PresentedToken>> find_presented(Connection& db, const std::string& token_hash) {
  auto query = db.prepare(sql::k_find_presented);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, token_hash);
  auto row = query->step();
  if (!row || !*row) {
    return row ? Result<std::optional<PresentedToken>>(std::nullopt) : propagate(row);
  }
  return PresentedToken{query->text(0),    static_cast<int>(query->integer(1)),
                        query->text(2),    query->integer(3),
                        query->text(4),    query->text(5),
                        query->integer(6), !query->is_null(7)};
}

// Why `token` cannot be exchanged at `now`, if it cannot. Reuse wins over
// expiry: a used token presented again is an attack whatever its age.
Result<void> check_presentable(const PresentedToken& token, UnixSeconds now) {
  if (token.family_revoked) {
    return fail(Errc::revoked, fmt::format("refresh family {} is revoked", token.family_id));
  }
  if (token.state != "active") {
    return fail(
        Errc::refresh_reuse,
        fmt::format("refresh token reuse detected (generation {} was already used): family {} and every "
                    "access token issued from it are revoked; sign in again",
                    token.generation, token.family_id));
  }
  if (now >= token.family_expires_at) {
    return fail(Errc::expired,
                fmt::format("refresh family {} expired at {} ({}s ago); sign in again", token.family_id,
                            token.family_expires_at, now - token.family_expires_at));
  }
  if (now >= token.expires_at) {
    return fail(Errc::expired, fmt::format("refresh token expired at {} ({}s ago); sign in again",
                                           token.expires_at, now - token.expires_at));
  }
  return {};
}

Result<void> insert_token(Connection& db, const std::string& token_hash, const std::string& family_id,
                          int generation, UnixSeconds issued_at, UnixSeconds expires_at) {
  return run(db, sql::k_insert_token, [&](Query& q) {
    q.bind(1, token_hash).bind(2, family_id).bind(3, generation).bind(4, issued_at).bind(5, expires_at);
  });
}

Result<void> insert_audit(Connection& db, const AuditEvent& event) {
  return run(db, sql::k_insert_audit, [&](Query& q) {
    q.bind(1, event.at).bind(2, event.kind).bind(3, event.subject).bind(4, event.detail);
  });
}

// Mark the family revoked and retire its active token; false when it was already revoked.
Result<bool> revoke_family_rows(Connection& db, const std::string& family_id, const std::string& reason,
                                UnixSeconds now) {
  auto query = db.prepare(sql::k_revoke_family);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, now).bind(2, reason).bind(3, family_id);
  if (auto done = query->run(); !done) {
    return propagate(done);
  }
  const bool changed = query->changes() > 0;
  auto retired = run(db, sql::k_revoke_family_tokens, [&](Query& q) { q.bind(1, family_id); });
  return retired ? Result<bool>(changed) : propagate(retired);
}

// Mark the presented token used and record its successor; what mint re-issues.
Result<RotatedFamily> record_successor(Connection& db, const PresentedToken& token,
                                       const Rotation& rotation) {
  auto used =
      run(db, sql::k_mark_used, [&](Query& q) { q.bind(1, rotation.now).bind(2, rotation.presented_hash); });
  if (!used) {
    return propagate(used);
  }
  RotatedFamily rotated{token.family_id, token.subject, json::Json::parse(token.grant_json, nullptr, false),
                        token.generation + 1,
                        std::min(rotation.now + rotation.refresh_ttl, token.family_expires_at)};
  if (rotated.grant.is_discarded()) {
    return fail(Errc::storage, fmt::format("refresh family {} has an unreadable grant in store {}",
                                           token.family_id, db.path()));
  }
  auto inserted = insert_token(db, rotation.new_hash, token.family_id, rotated.generation, rotation.now,
                               rotated.token_expires_at);
  return inserted ? Result<RotatedFamily>(std::move(rotated)) : propagate(inserted);
}

// ---- usage ----------------------------------------------------------------------

// Where a usage span is read: the daily rollup (whole UTC days) or the raw
// ledger (partial days).
struct UsageSource {
  std::string_view table;
  std::string_view day;  // expression for the UTC day start
  std::string_view time; // column compared with since/until
  std::string_view requests;
};

constexpr UsageSource k_rollup{"usage_daily", "day", "day", "SUM(requests)"};
constexpr UsageSource k_ledger{"usage_ledger", "(at - at % 86400)", "at", "COUNT(*)"};

std::string_view key_expression(GroupBy key, const UsageSource& source) {
  switch (key) {
  case GroupBy::sub:
    return "subject";
  case GroupBy::day:
    return source.day;
  case GroupBy::model:
    return "model";
  }
  return "subject";
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& part : parts) {
    out += (out.empty() ? "" : std::string(separator)) + part;
  }
  return out;
}

std::vector<std::string> usage_filters(const UsageQuery& query, const UsageSource& source) {
  std::vector<std::string> filters;
  if (query.since) {
    filters.push_back(fmt::format("{} >= ?", source.time));
  }
  if (query.until) {
    filters.push_back(fmt::format("{} < ?", source.time));
  }
  if (query.subject) {
    filters.emplace_back("subject = ?");
  }
  if (query.model) {
    filters.emplace_back("model = ?");
  }
  return filters;
}

std::string usage_sql(const UsageQuery& query, const UsageSource& source) {
  std::vector<std::string> keys;
  for (GroupBy key : query.group_by) {
    keys.emplace_back(key_expression(key, source));
  }
  const auto filters = usage_filters(query, source);
  std::string text =
      fmt::format("SELECT {}{}{}, COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
                  "COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_tokens), 0) "
                  "FROM {}",
                  join(keys, ", "), keys.empty() ? "" : ", ", source.requests, source.table);
  if (!filters.empty()) {
    text += " WHERE " + join(filters, " AND ");
  }
  if (!keys.empty()) {
    text += " GROUP BY " + join(keys, ", ") + " ORDER BY " + join(keys, ", ");
  }
  return text;
}

void bind_usage_filters(Query& q, const UsageQuery& query) {
  int index = 0;
  for (const auto& bound : {query.since, query.until}) {
    if (bound) {
      q.bind(++index, *bound);
    }
  }
  for (const auto& text : {query.subject, query.model}) {
    if (text) {
      q.bind(++index, *text);
    }
  }
}

UsageRow usage_row(const Query& q, const std::vector<GroupBy>& group_by) {
  UsageRow row;
  int column = 0;
  for (GroupBy key : group_by) {
    if (key == GroupBy::sub) {
      row.subject = q.text(column);
    } else if (key == GroupBy::day) {
      row.day = utc_day(q.integer(column));
    } else {
      row.model = q.text(column);
    }
    ++column;
  }
  row.requests = q.integer(column);
  row.input_tokens = q.integer(column + 1);
  row.output_tokens = q.integer(column + 2);
  row.cache_read_tokens = q.integer(column + 3);
  row.cache_write_tokens = q.integer(column + 4);
  return row;
}

// Rows of `query` read from `source` alone.
Result<std::vector<UsageRow>> read_usage(Connection& db, const UsageQuery& query, const UsageSource& source) {
  auto statement = db.prepare(usage_sql(query, source));
  if (!statement) {
    return propagate(statement);
  }
  bind_usage_filters(*statement, query);
  return statement->collect<UsageRow>([&](const Query& row) { return usage_row(row, query.group_by); });
}

struct UsageSpan {
  UsageQuery query;
  const UsageSource* source;
};

UsageSpan span_of(const UsageQuery& query, std::optional<UnixSeconds> since, std::optional<UnixSeconds> until,
                  const UsageSource& source) {
  UsageQuery part = query;
  part.since = since;
  part.until = until;
  return {std::move(part), &source};
}

// Whole UTC days come from the rollup; only the partial days at either end
// of [since, until) are summed from the raw ledger.
std::vector<UsageSpan> plan_usage(const UsageQuery& query) {
  const auto first_whole =
      query.since.transform([](UnixSeconds t) { return utc_day_start(t + k_day_seconds - 1); });
  const auto last_whole = query.until.transform([](UnixSeconds t) { return utc_day_start(t); });
  if (first_whole && last_whole && *first_whole >= *last_whole) {
    return {span_of(query, query.since, query.until, k_ledger)};
  }
  std::vector<UsageSpan> spans{span_of(query, first_whole, last_whole, k_rollup)};
  if (query.since && *query.since != *first_whole) {
    spans.push_back(span_of(query, query.since, first_whole, k_ledger));
  }
  if (query.until && *query.until != *last_whole) {
    spans.push_back(span_of(query, last_whole, query.until, k_ledger));
  }
  return spans;
}

std::vector<std::string> group_key(const UsageRow& row, const std::vector<GroupBy>& group_by) {
  std::vector<std::string> key;
  for (GroupBy part : group_by) {
    key.push_back(part == GroupBy::sub ? row.subject : part == GroupBy::day ? row.day : row.model);
  }
  return key;
}

// Sum rows of several spans by their grouping keys, ordered by those keys.
std::vector<UsageRow> merge_usage(const std::vector<std::vector<UsageRow>>& parts,
                                  const std::vector<GroupBy>& group_by) {
  std::map<std::vector<std::string>, UsageRow> merged;
  for (const auto& rows : parts) {
    for (const auto& row : rows) {
      auto [slot, fresh] = merged.try_emplace(group_key(row, group_by), row);
      if (!fresh) {
        slot->second.requests += row.requests;
        slot->second.input_tokens += row.input_tokens;
        slot->second.output_tokens += row.output_tokens;
        slot->second.cache_read_tokens += row.cache_read_tokens;
        slot->second.cache_write_tokens += row.cache_write_tokens;
      }
    }
  }
  std::vector<UsageRow> out;
  for (auto& [key, row] : merged) {
    out.push_back(std::move(row));
  }
  return out;
}

Result<std::int64_t> used_on_day(Connection& db, const std::string& subject, UnixSeconds now) {
  return single(db, sql::k_used_on_day, [&](Query& q) { q.bind(1, utc_day_start(now)).bind(2, subject); });
}

// Today's settled and outstanding tokens of `subject`; reservations older
// than `stale_after` (a crashed request) no longer count.
Result<QuotaStatus> read_quota(Connection& db, const std::string& subject, UnixSeconds now,
                               std::optional<std::int64_t> limit, std::int64_t stale_after) {
  auto used = used_on_day(db, subject, now);
  if (!used) {
    return propagate(used);
  }
  const UnixSeconds counted_from = std::max(utc_day_start(now), now - stale_after);
  auto reserved =
      single(db, sql::k_reserved_since, [&](Query& q) { q.bind(1, subject).bind(2, counted_from); });
  if (!reserved) {
    return propagate(reserved);
  }
  return QuotaStatus{*used, *reserved, limit, utc_day_start(now) + k_day_seconds};
}

Result<std::int64_t> insert_reservation(Connection& db, const ReservationRequest& request) {
  auto dropped = run(db, sql::k_drop_stale_reservations, [&](Query& q) {
    q.bind(1, request.subject).bind(2, request.now - request.stale_after);
  });
  if (!dropped) {
    return propagate(dropped);
  }
  return single(db, sql::k_insert_reservation,
                [&](Query& q) { q.bind(1, request.subject).bind(2, request.now).bind(3, request.estimate); });
}

Result<void> insert_usage(Connection& db, const UsageRecord& u) {
  return run(db, sql::k_insert_usage, [&](Query& q) {
    q.bind(1, u.at).bind(2, u.subject).bind(3, u.jti).bind(4, u.model).bind(5, u.status);
    q.bind(6, u.input_tokens).bind(7, u.output_tokens).bind(8, u.cache_read_tokens);
    q.bind(9, u.cache_write_tokens).bind(10, u.latency_ms).bind(11, u.request_id);
    q.bind(12, u.stream ? 1 : 0).bind(13, u.quota_limit);
  });
}

Result<void> add_to_rollups(Connection& db, const UsageRecord& u) {
  auto daily = run(db, sql::k_upsert_daily, [&](Query& q) {
    q.bind(1, utc_day_start(u.at)).bind(2, u.subject).bind(3, u.model).bind(4, u.input_tokens);
    q.bind(5, u.output_tokens).bind(6, u.cache_read_tokens).bind(7, u.cache_write_tokens);
  });
  if (!daily) {
    return daily;
  }
  return run(db, sql::k_upsert_subject,
             [&](Query& q) { q.bind(1, u.subject).bind(2, u.at).bind(3, u.quota_limit); });
}

// ---- revocation rows ---------------------------------------------------------------

RevocationKind kind_from_name(const std::string& name) {
  if (name == "subject") {
    return RevocationKind::subject;
  }
  return name == "family" ? RevocationKind::family : RevocationKind::jti;
}

// The revocation `sql` finds for `key` and `extra` (reason, revoked_at[, expires_at]).
Result<std::optional<Revocation>> find_one(Connection& db, const std::string& sql_text, RevocationKind kind,
                                           const std::string& key, std::optional<std::int64_t> extra) {
  auto query = db.prepare(sql_text);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, key);
  if (extra) {
    query->bind(2, *extra);
  }
  auto row = query->step();
  if (!row || !*row) {
    return row ? Result<std::optional<Revocation>>(std::nullopt) : propagate(row);
  }
  Revocation found{kind, key, query->text(0), query->integer(1), std::nullopt};
  if (kind == RevocationKind::jti) {
    found.expires_at = query->optional_integer(2);
  }
  return found;
}

// ---- the store ---------------------------------------------------------------------

class SqliteStore final : public Store {
public:
  explicit SqliteStore(Connection db) : m_db(std::move(db)) {}

  Result<void> create_family(const NewFamily& family) override;
  Result<RotatedFamily> rotate(const Rotation& rotation, const MintFn& mint) override;
  Result<std::optional<std::string>> family_of(const std::string& token_hash) override;
  Result<void> revoke_family(const std::string& family_id, const std::string& reason,
                             UnixSeconds now) override;
  Result<void> revoke_jti(const std::string& jti, std::optional<UnixSeconds> expires_at,
                          const std::string& subject, const std::string& reason, UnixSeconds now) override;
  Result<void> revoke_subject(const std::string& subject, UnixSeconds cutoff, const std::string& reason,
                              UnixSeconds now) override;
  Result<std::optional<Revocation>> find_revocation(const TokenIdentity& token) override;
  Result<std::int64_t> revocation_epoch() override;
  Result<std::vector<Revocation>> list_revocations() override;
  Result<std::int64_t> prune(UnixSeconds now, std::int64_t leeway) override;
  Result<std::optional<Reservation>> reserve(const ReservationRequest& request,
                                             QuotaStatus* refused) override;
  Result<void> settle(std::int64_t reservation_id, const UsageRecord& usage) override;
  Result<QuotaStatus> quota_status(const std::string& subject, UnixSeconds now,
                                   std::optional<std::int64_t> limit) override;
  Result<std::vector<UsageRow>> usage(const UsageQuery& query) override;
  Result<std::vector<SubjectQuota>> subject_quotas(UnixSeconds now) override;
  Result<void> audit(const AuditEvent& event) override;

private:
  Result<RotatedFamily> punish_reuse(Transaction& tx, const PresentedToken& token, UnixSeconds now,
                                     const Error& reuse);
  Result<Transaction> begin(Durability durability);
  // Run `body` in BEGIN IMMEDIATE under `durability` and commit when it succeeds.
  template <typename Write> Result<void> write(Durability durability, Write&& body);

  // One connection is not safe for interleaved transactions: serialise callers.
  std::recursive_mutex m_mutex;
  Connection m_db;
  Durability m_durability = Durability::full; // as set by prepare_connection
};

// Security writes (families, revocations, audit) are fsynced at commit
// (synchronous=FULL); usage and reservations use NORMAL, which in WAL mode
// survives a crash of the process and becomes durable at the next FULL
// commit or checkpoint. The setting is per connection, so switch per transaction.
Result<Transaction> SqliteStore::begin(Durability durability) {
  if (auto placed = check_in_place(m_db); !placed) {
    return propagate(placed);
  }
  if (durability != m_durability) {
    static const std::string full = "PRAGMA synchronous = FULL";
    static const std::string normal = "PRAGMA synchronous = NORMAL";
    auto set = m_db.run_cached(durability == Durability::full ? full : normal);
    if (!set) {
      return propagate(set);
    }
    m_durability = durability;
  }
  return Transaction::begin_immediate(m_db);
}

template <typename Write> Result<void> SqliteStore::write(Durability durability, Write&& body) {
  auto tx = begin(durability);
  if (!tx) {
    return propagate(tx);
  }
  if (auto done = body(); !done) {
    return done;
  }
  return tx->commit();
}

Result<void> SqliteStore::create_family(const NewFamily& family) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&]() -> Result<void> {
    auto inserted = run(m_db, sql::k_insert_family, [&](Query& q) {
      q.bind(1, family.family_id).bind(2, family.subject).bind(3, family.grant.dump());
      q.bind(4, family.created_at).bind(5, family.expires_at);
    });
    if (!inserted) {
      return inserted;
    }
    return insert_token(m_db, family.token_hash, family.family_id, 0, family.created_at,
                        family.token_expires_at);
  });
}

Result<RotatedFamily> SqliteStore::rotate(const Rotation& rotation, const MintFn& mint) {
  const std::lock_guard lock(m_mutex);
  auto tx = begin(Durability::full);
  if (!tx) {
    return propagate(tx);
  }
  auto presented = find_presented(m_db, rotation.presented_hash);
  if (!presented) {
    return propagate(presented);
  }
  if (!*presented) {
    return fail(Errc::claim_mismatch, "unknown refresh token");
  }
  if (auto usable = check_presentable(**presented, rotation.now); !usable) {
    const bool reuse = usable.error().code == Errc::refresh_reuse;
    return reuse ? punish_reuse(*tx, **presented, rotation.now, usable.error()) : propagate(usable);
  }
  auto rotated = record_successor(m_db, **presented, rotation);
  if (!rotated) {
    return rotated;
  }
  // A failed mint returns here and the guard rolls the rotation back.
  if (auto minted = mint(*rotated); !minted) {
    return propagate(minted);
  }
  auto committed = tx->commit();
  return committed ? rotated : propagate(committed);
}

// A used token came back: someone holds a copy. Revoke the family (and with
// it every access token carrying its fid), audit, commit, report the reuse.
Result<RotatedFamily> SqliteStore::punish_reuse(Transaction& tx, const PresentedToken& token, UnixSeconds now,
                                                const Error& reuse) {
  auto revoked = revoke_family_rows(m_db, token.family_id, std::string(k_reuse_reason), now);
  if (!revoked) {
    return propagate(revoked);
  }
  const json::Json detail = {{"family_id", token.family_id}, {"generation", token.generation}};
  auto audited = insert_audit(m_db, {now, "refresh_reuse", token.subject, detail.dump()});
  if (!audited) {
    return propagate(audited);
  }
  auto committed = tx.commit();
  return committed ? std::unexpected(reuse) : propagate(committed);
}

Result<std::optional<std::string>> SqliteStore::family_of(const std::string& token_hash) {
  const std::lock_guard lock(m_mutex);
  auto query = m_db.prepare(sql::k_family_of);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, token_hash);
  auto row = query->step();
  if (!row) {
    return propagate(row);
  }
  return *row ? std::optional<std::string>(query->text(0)) : std::nullopt;
}

Result<void> SqliteStore::revoke_family(const std::string& family_id, const std::string& reason,
                                        UnixSeconds now) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&]() -> Result<void> {
    auto exists = single(m_db, sql::k_family_exists, [&](Query& q) { q.bind(1, family_id); });
    if (!exists) {
      return propagate(exists);
    }
    if (*exists == 0) {
      return fail(Errc::claim_mismatch, fmt::format("unknown refresh family {}", family_id));
    }
    auto revoked = revoke_family_rows(m_db, family_id, reason, now);
    return revoked ? Result<void>{} : propagate(revoked);
  });
}

Result<void> SqliteStore::revoke_jti(const std::string& jti, std::optional<UnixSeconds> expires_at,
                                     const std::string& subject, const std::string& reason, UnixSeconds now) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&] {
    return run(m_db, sql::k_revoke_jti, [&](Query& q) {
      q.bind(1, jti).bind(2, subject).bind(3, reason).bind(4, now).bind(5, expires_at);
    });
  });
}

Result<void> SqliteStore::revoke_subject(const std::string& subject, UnixSeconds cutoff,
                                         const std::string& reason, UnixSeconds now) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&] {
    return run(m_db, sql::k_revoke_subject,
               [&](Query& q) { q.bind(1, subject).bind(2, cutoff).bind(3, reason).bind(4, now); });
  });
}

Result<std::optional<Revocation>> SqliteStore::find_revocation(const TokenIdentity& token) {
  const std::lock_guard lock(m_mutex);
  if (auto placed = check_in_place(m_db); !placed) {
    return propagate(placed);
  }
  auto by_jti = find_one(m_db, sql::k_find_jti, RevocationKind::jti, token.jti, std::nullopt);
  if (!by_jti || *by_jti) {
    return by_jti;
  }
  auto by_subject =
      find_one(m_db, sql::k_find_cutoff, RevocationKind::subject, token.subject, token.issued_at);
  if (!by_subject || *by_subject || !token.family_id) {
    return by_subject;
  }
  return find_one(m_db, sql::k_find_family_revoked, RevocationKind::family, *token.family_id, std::nullopt);
}

Result<std::int64_t> SqliteStore::revocation_epoch() {
  const std::lock_guard lock(m_mutex);
  if (auto placed = check_in_place(m_db); !placed) {
    return propagate(placed);
  }
  auto query = m_db.prepare(sql::k_revocation_epoch);
  if (!query) {
    return propagate(query);
  }
  auto row = query->step();
  if (!row) {
    return propagate(row);
  }
  if (!*row) {
    return fail(Errc::storage, fmt::format("store {} has no revocation epoch row; it was edited by hand: "
                                           "restore it from a backup",
                                           m_db.path()));
  }
  return query->integer(0);
}

Result<std::vector<Revocation>> SqliteStore::list_revocations() {
  const std::lock_guard lock(m_mutex);
  auto query = m_db.prepare(sql::k_list_revocations);
  if (!query) {
    return propagate(query);
  }
  return query->collect<Revocation>([](const Query& row) {
    return Revocation{kind_from_name(row.text(0)), row.text(1), row.text(2), row.integer(3),
                      row.optional_integer(4)};
  });
}

Result<std::int64_t> SqliteStore::prune(UnixSeconds now, std::int64_t leeway) {
  const std::lock_guard lock(m_mutex);
  std::int64_t removed = 0;
  auto pruned = write(Durability::full, [&]() -> Result<void> {
    auto query = m_db.prepare(sql::k_prune);
    if (!query) {
      return propagate(query);
    }
    query->bind(1, now - leeway);
    auto done = query->run();
    removed = query->changes();
    return done;
  });
  return pruned ? Result<std::int64_t>(removed) : propagate(pruned);
}

Result<std::optional<Reservation>> SqliteStore::reserve(const ReservationRequest& request,
                                                        QuotaStatus* refused) {
  const std::lock_guard lock(m_mutex);
  std::optional<Reservation> reservation;
  auto done = write(Durability::normal, [&]() -> Result<void> {
    auto status = read_quota(m_db, request.subject, request.now, request.limit, request.stale_after);
    if (!status) {
      return propagate(status);
    }
    if (request.limit && status->used + status->reserved + request.estimate > *request.limit) {
      if (refused != nullptr) {
        *refused = *status;
      }
      return {};
    }
    auto id = insert_reservation(m_db, request);
    if (!id) {
      return propagate(id);
    }
    status->reserved += request.estimate;
    reservation = Reservation{*id, *status};
    return {};
  });
  return done ? Result<std::optional<Reservation>>(reservation) : propagate(done);
}

Result<void> SqliteStore::settle(std::int64_t reservation_id, const UsageRecord& usage) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::normal, [&]() -> Result<void> {
    if (reservation_id != 0) {
      auto deleted = run(m_db, sql::k_delete_reservation, [&](Query& q) { q.bind(1, reservation_id); });
      if (!deleted) {
        return deleted;
      }
    }
    if (auto inserted = insert_usage(m_db, usage); !inserted) {
      return inserted;
    }
    return add_to_rollups(m_db, usage);
  });
}

Result<QuotaStatus> SqliteStore::quota_status(const std::string& subject, UnixSeconds now,
                                              std::optional<std::int64_t> limit) {
  const std::lock_guard lock(m_mutex);
  return read_quota(m_db, subject, now, limit, ReservationRequest{}.stale_after);
}

Result<std::vector<UsageRow>> SqliteStore::usage(const UsageQuery& query) {
  const std::lock_guard lock(m_mutex);
  const auto spans = plan_usage(query);
  if (spans.size() == 1) {
    return read_usage(m_db, spans.front().query, *spans.front().source);
  }
  std::vector<std::vector<UsageRow>> parts;
  for (const auto& span : spans) {
    auto rows = read_usage(m_db, span.query, *span.source);
    if (!rows) {
      return rows;
    }
    parts.push_back(std::move(*rows));
  }
  return merge_usage(parts, query.group_by);
}

Result<std::vector<SubjectQuota>> SqliteStore::subject_quotas(UnixSeconds now) {
  const std::lock_guard lock(m_mutex);
  auto query = m_db.prepare(sql::k_subject_quotas);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, utc_day_start(now));
  return query->collect<SubjectQuota>([](const Query& row) {
    return SubjectQuota{row.text(0), row.integer(2), row.optional_integer(1)};
  });
}

Result<void> SqliteStore::audit(const AuditEvent& event) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&] { return insert_audit(m_db, event); });
}

} // namespace

std::string_view revocation_kind_name(RevocationKind kind) {
  switch (kind) {
  case RevocationKind::jti:
    return "jti";
  case RevocationKind::subject:
    return "subject";
  case RevocationKind::family:
    return "family";
  }
  return "jti";
}

int schema_version() {
  return k_schema_version;
}

std::string utc_day(UnixSeconds t) {
  const std::chrono::sys_days day(std::chrono::days(floor_div(t, k_day_seconds)));
  const std::chrono::year_month_day date{day};
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                     static_cast<unsigned>(date.day()));
}

UnixSeconds utc_day_start(UnixSeconds t) {
  return floor_div(t, k_day_seconds) * k_day_seconds;
}

Result<std::unique_ptr<Store>> open_sqlite(const std::filesystem::path& path) {
  if (auto created = create_private_file(path); !created) {
    return propagate(created);
  }
  auto db = Connection::open(path);
  if (!db) {
    return propagate(db);
  }
  if (auto ready = prepare_connection(*db); !ready) {
    return propagate(ready);
  }
  return std::make_unique<SqliteStore>(std::move(*db));
}

} // namespace claudegate::store
