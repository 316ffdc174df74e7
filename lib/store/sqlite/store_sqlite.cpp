// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/sqlite.hpp"

#include "../group_commit.hpp"
#include "claudegate/base/duration.hpp"
#include "claudegate/base/fs.hpp"
#include "sqlite_util.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

namespace claudegate::store {

namespace {

using sqlite::Connection;
using sqlite::Query;
using sqlite::Transaction;

// A write transaction's synchronous setting (see SqliteStore::begin).
enum class Durability { full, normal };

constexpr int k_schema_version = 3;
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
-- rechecks them once it changes (DESIGN.md §3).
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
)sql",
                                                                         R"sql(
-- A reservation counts until settled or its owner process is known dead
-- (no longer after a fixed age: a long stream keeps its hold). Rows of
-- older builds have no owner and are released as orphans.
ALTER TABLE quota_reservations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
-- Requests charged the gateway's estimate, not the API's reported usage.
ALTER TABLE usage_ledger ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN estimated_requests INTEGER NOT NULL DEFAULT 0;
)sql"};

// ---- SQL, one place per statement -------------------------------------------

namespace sql {
const std::string k_insert_family =
    "INSERT INTO refresh_families (family_id, subject, grant_json, created_at, "
    "expires_at) VALUES (?, ?, ?, ?, ?)";
const std::string k_insert_token = "INSERT INTO refresh_tokens (token_hash, family_id, generation, state, "
                                   "issued_at, expires_at) VALUES (?, ?, ?, 'active', ?, ?)";
// With the subject's cut-off when it covers the family (revoke --sub after the family began).
const std::string k_find_presented =
    "SELECT t.family_id, t.generation, t.state, t.expires_at, f.subject, f.grant_json, f.expires_at, "
    "f.revoked_at, c.cutoff FROM refresh_tokens t "
    "JOIN refresh_families f ON f.family_id = t.family_id "
    "LEFT JOIN subject_cutoffs c ON c.subject = f.subject AND c.cutoff >= f.created_at "
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
// The live families of ?1 that a cut-off at ?2 stops at ?3: begun by then,
// not revoked, not expired, not already stopped by an earlier cut-off.
const std::string k_families_to_cut =
    "SELECT COUNT(*) FROM refresh_families f WHERE f.subject = ?1 AND f.created_at <= ?2 "
    "AND f.revoked_at IS NULL AND f.expires_at > ?3 "
    "AND NOT EXISTS (SELECT 1 FROM subject_cutoffs c "
    "WHERE c.subject = f.subject AND c.cutoff >= f.created_at) "
    "AND EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.family_id AND t.state = 'active' "
    "AND t.expires_at > ?3)";
const std::string k_revocation_epoch = "SELECT epoch FROM revocation_epoch WHERE id = 1";
// The three revocation lookups in one statement (one read transaction): each
// arm is a primary-key lookup; column 0 orders them jti, subject, family.
const std::string k_find_revocation =
    "SELECT 0, reason, revoked_at, expires_at FROM revoked_jtis WHERE jti = ?1 "
    "UNION ALL SELECT 1, reason, revoked_at, NULL FROM subject_cutoffs WHERE subject = ?2 AND cutoff >= ?3 "
    "UNION ALL SELECT 2, revoked_reason, revoked_at, NULL FROM refresh_families "
    "WHERE family_id = ?4 AND revoked_at IS NOT NULL";
const std::string k_list_revocations =
    "SELECT 'jti', jti, reason, revoked_at, expires_at FROM revoked_jtis "
    "UNION ALL SELECT 'subject', subject, reason, revoked_at, NULL FROM subject_cutoffs "
    "UNION ALL SELECT 'family', family_id, revoked_reason, revoked_at, NULL FROM refresh_families "
    "WHERE revoked_at IS NOT NULL ORDER BY 4 DESC, 1, 2";
const std::string k_prune = "DELETE FROM revoked_jtis WHERE expires_at IS NOT NULL AND expires_at < ?";
// Rows a prune keeps (no expiry, or not expired before ?1), counted and
// copied through the expiry index; the expired rows counted up to ?2 only.
const std::string k_count_survivors = "SELECT (SELECT COUNT(*) FROM revoked_jtis WHERE expires_at IS NULL) + "
                                      "(SELECT COUNT(*) FROM revoked_jtis WHERE expires_at >= ?1)";
const std::string k_count_expired_up_to =
    "SELECT COUNT(*) FROM (SELECT 1 FROM revoked_jtis WHERE expires_at < ?1 LIMIT ?2)";
const std::string k_create_survivors =
    "CREATE TEMP TABLE prune_survivors AS SELECT rowid AS id, jti, subject, reason, revoked_at, expires_at "
    "FROM main.revoked_jtis WHERE 0";
const std::string k_copy_survivors =
    "INSERT INTO temp.prune_survivors SELECT rowid, jti, subject, reason, revoked_at, expires_at "
    "FROM main.revoked_jtis WHERE expires_at IS NULL UNION ALL SELECT rowid, jti, subject, reason, "
    "revoked_at, expires_at FROM main.revoked_jtis WHERE expires_at >= ?1";
// Without a WHERE (and with no DELETE trigger) SQLite frees the table's and
// its indexes' pages whole instead of deleting row by row.
const std::string k_clear_revoked_jtis = "DELETE FROM main.revoked_jtis";
const std::string k_restore_survivors =
    "INSERT INTO main.revoked_jtis (rowid, jti, subject, reason, revoked_at, expires_at) "
    "SELECT id, jti, subject, reason, revoked_at, expires_at FROM temp.prune_survivors ORDER BY id";
const std::string k_drop_survivors = "DROP TABLE temp.prune_survivors";
const std::string k_set_revocation_epoch = "UPDATE revocation_epoch SET epoch = ?1 WHERE id = 1";

const std::string k_used_on_day =
    "SELECT COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0) "
    "FROM usage_daily WHERE day = ? AND subject = ?";
const std::string k_reserved_since =
    "SELECT COALESCE(SUM(estimate), 0) FROM quota_reservations WHERE subject = ? AND created_at >= ?";
const std::string k_insert_reservation =
    "INSERT INTO quota_reservations (subject, created_at, estimate, owner) VALUES (?, ?, ?, ?) RETURNING id";
const std::string k_delete_reservation = "DELETE FROM quota_reservations WHERE id = ?";
const std::string k_reservation_owners = "SELECT DISTINCT owner FROM quota_reservations";
const std::string k_delete_owned_reservations = "DELETE FROM quota_reservations WHERE owner = ?";
const std::string k_insert_usage =
    "INSERT INTO usage_ledger (at, subject, jti, model, status, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, latency_ms, request_id, stream, quota_limit, estimated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const std::string k_upsert_daily =
    "INSERT INTO usage_daily (day, subject, model, requests, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, estimated_requests) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?) "
    "ON CONFLICT (day, subject, model) DO UPDATE SET requests = usage_daily.requests + 1, "
    "input_tokens = usage_daily.input_tokens + excluded.input_tokens, "
    "output_tokens = usage_daily.output_tokens + excluded.output_tokens, "
    "cache_read_tokens = usage_daily.cache_read_tokens + excluded.cache_read_tokens, "
    "cache_write_tokens = usage_daily.cache_write_tokens + excluded.cache_write_tokens, "
    "estimated_requests = usage_daily.estimated_requests + excluded.estimated_requests";
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
  std::optional<UnixSeconds> subject_cutoff = std::nullopt; // a revoke --sub covering the family
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
  PresentedToken token{query->text(0),    static_cast<int>(query->integer(1)),
                       query->text(2),    query->integer(3),
                       query->text(4),    query->text(5),
                       query->integer(6), !query->is_null(7)};
  if (!query->is_null(8)) {
    token.subject_cutoff = query->integer(8);
  }
  return token;
}

// Why `token`'s family is stopped by its subject's cut-off (revoke --sub).
Error subject_cut_off(const PresentedToken& token) {
  return {Errc::revoked,
          fmt::format("refresh family {} was revoked: subject {} was revoked at {} (every token and refresh "
                      "family begun by then); issue a new refresh token if access should resume",
                      token.family_id, token.subject, duration::format_time(*token.subject_cutoff))};
}

// Why `token` cannot be exchanged at `now`, if it cannot. Reuse wins over
// the subject's cut-off and expiry: a used token presented again is an
// attack whatever its age, and is still punished and audited.
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
  if (token.subject_cutoff) {
    return std::unexpected(subject_cut_off(token));
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
  std::string_view estimated; // of those requests, the ones charged an estimate
};

constexpr UsageSource k_rollup{"usage_daily", "day", "day", "requests", "estimated_requests"};
constexpr UsageSource k_ledger{"usage_ledger", "(at - at % 86400)", "at", "1", "estimated"};

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

// The rows of `source` that `query` covers, one per rollup or ledger row:
// grouping keys, request count, token counts. Summed in C++ (UsageGroups):
// SQLite's GROUP BY sorts every row first, several times slower here.
std::string usage_sql(const UsageQuery& query, const UsageSource& source) {
  std::string keys;
  for (GroupBy key : query.group_by) {
    keys += fmt::format("{}, ", key_expression(key, source));
  }
  std::string text = fmt::format("SELECT {}{}, input_tokens, output_tokens, cache_read_tokens, "
                                 "cache_write_tokens, {} FROM {}",
                                 keys, source.requests, source.estimated, source.table);
  const auto filters = usage_filters(query, source);
  if (!filters.empty()) {
    text += " WHERE " + join(filters, " AND ");
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

const std::string& group_field(const UsageRow& row, GroupBy key) {
  return key == GroupBy::sub ? row.subject : key == GroupBy::day ? row.day : row.model;
}

// -1, 0 or 1 as `a`'s grouping keys sort before, with or after `b`'s.
int compare_groups(const UsageRow& a, const UsageRow& b, const std::vector<GroupBy>& group_by) {
  for (GroupBy key : group_by) {
    if (const int order = group_field(a, key).compare(group_field(b, key)); order != 0) {
      return order < 0 ? -1 : 1;
    }
  }
  return 0;
}

// Usage rows summed by their grouping keys, in a hash map keyed by the
// keys' bytes (each length-prefixed, so no two key tuples collide).
class UsageGroups {
public:
  explicit UsageGroups(const std::vector<GroupBy>& group_by) : m_group_by(group_by) {}

  // Add the row `q` stands on (usage_sql's columns).
  void add(const Query& q) {
    m_key.clear();
    int column = 0;
    for (GroupBy key : m_group_by) {
      const std::string part = key == GroupBy::day ? std::to_string(q.integer(column)) : q.text(column);
      m_key += std::to_string(part.size()) + ':' + part;
      ++column;
    }
    auto [slot, fresh] = m_groups.try_emplace(m_key);
    if (fresh) {
      slot->second = keys_of(q);
    }
    UsageRow& row = slot->second;
    row.requests += q.integer(column);
    row.input_tokens += q.integer(column + 1);
    row.output_tokens += q.integer(column + 2);
    row.cache_read_tokens += q.integer(column + 3);
    row.cache_write_tokens += q.integer(column + 4);
    row.estimated_requests += q.integer(column + 5);
  }

  // The groups ordered by their keys (the ORDER BY Store::usage promises).
  std::vector<UsageRow> ordered() && {
    std::vector<UsageRow*> order;
    order.reserve(m_groups.size());
    for (auto& [key, row] : m_groups) {
      order.push_back(&row);
    }
    std::sort(order.begin(), order.end(), [this](const UsageRow* a, const UsageRow* b) {
      return compare_groups(*a, *b, m_group_by) < 0;
    });
    std::vector<UsageRow> rows;
    rows.reserve(order.size());
    for (UsageRow* row : order) {
      rows.push_back(std::move(*row));
    }
    return rows;
  }

private:
  UsageRow keys_of(const Query& q) {
    UsageRow row;
    int column = 0;
    for (GroupBy key : m_group_by) {
      if (key == GroupBy::sub) {
        row.subject = q.text(column);
      } else if (key == GroupBy::day) {
        row.day = day_text(q.integer(column));
      } else {
        row.model = q.text(column);
      }
      ++column;
    }
    return row;
  }
  const std::string& day_text(UnixSeconds day) {
    auto [slot, fresh] = m_days.try_emplace(day);
    if (fresh) {
      slot->second = utc_day(day);
    }
    return slot->second;
  }

  const std::vector<GroupBy>& m_group_by;
  std::string m_key;
  std::unordered_map<std::string, UsageRow> m_groups;
  std::unordered_map<UnixSeconds, std::string> m_days;
};

// Add the rows of `query` read from `source` alone to `groups`.
Result<void> read_usage(Connection& db, const UsageQuery& query, const UsageSource& source,
                        UsageGroups& groups) {
  auto statement = db.prepare(usage_sql(query, source));
  if (!statement) {
    return propagate(statement);
  }
  bind_usage_filters(*statement, query);
  return statement->for_each_row([&] { groups.add(*statement); });
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

Result<std::int64_t> used_on_day(Connection& db, const std::string& subject, UnixSeconds now) {
  return single(db, sql::k_used_on_day, [&](Query& q) { q.bind(1, utc_day_start(now)).bind(2, subject); });
}

// Today's settled and outstanding tokens of `subject`: every reservation
// made today counts until it is settled (or released as an orphan).
Result<QuotaStatus> read_quota(Connection& db, const std::string& subject, UnixSeconds now,
                               std::optional<std::int64_t> limit) {
  auto used = used_on_day(db, subject, now);
  if (!used) {
    return propagate(used);
  }
  const UnixSeconds counted_from = utc_day_start(now);
  auto reserved =
      single(db, sql::k_reserved_since, [&](Query& q) { q.bind(1, subject).bind(2, counted_from); });
  if (!reserved) {
    return propagate(reserved);
  }
  return QuotaStatus{*used, *reserved, limit, utc_day_start(now) + k_day_seconds};
}

Result<std::int64_t> insert_reservation(Connection& db, const ReservationRequest& request,
                                        std::int64_t amount) {
  return single(db, sql::k_insert_reservation, [&](Query& q) {
    q.bind(1, request.subject).bind(2, request.now).bind(3, amount).bind(4, request.owner);
  });
}

Result<void> insert_usage(Connection& db, const UsageRecord& u) {
  return run(db, sql::k_insert_usage, [&](Query& q) {
    q.bind(1, u.at).bind(2, u.subject).bind(3, u.jti).bind(4, u.model).bind(5, u.status);
    q.bind(6, u.input_tokens).bind(7, u.output_tokens).bind(8, u.cache_read_tokens);
    q.bind(9, u.cache_write_tokens).bind(10, u.latency_ms).bind(11, u.request_id);
    q.bind(12, u.stream ? 1 : 0).bind(13, u.quota_limit).bind(14, u.estimated ? 1 : 0);
  });
}

Result<void> add_to_rollups(Connection& db, const UsageRecord& u) {
  auto daily = run(db, sql::k_upsert_daily, [&](Query& q) {
    q.bind(1, utc_day_start(u.at)).bind(2, u.subject).bind(3, u.model).bind(4, u.input_tokens);
    q.bind(5, u.output_tokens).bind(6, u.cache_read_tokens).bind(7, u.cache_write_tokens);
    q.bind(8, u.estimated ? 1 : 0);
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

// The key a revocation of `kind` names for `token`.
const std::string& revocation_key(const TokenIdentity& token, RevocationKind kind) {
  if (kind == RevocationKind::subject) {
    return token.subject;
  }
  return kind == RevocationKind::family ? *token.family_id : token.jti;
}

// The revocation that applies to `token`, by one statement; when several
// apply, the jti's wins over the subject's, which wins over the family's.
Result<std::optional<Revocation>> find_first_revocation(Connection& db, const TokenIdentity& token) {
  auto query = db.prepare(sql::k_find_revocation);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, token.jti).bind(2, token.subject).bind(3, token.issued_at);
  if (token.family_id) {
    query->bind(4, *token.family_id);
  }
  std::optional<Revocation> found;
  auto done = query->for_each_row([&] {
    const auto kind = static_cast<RevocationKind>(query->integer(0));
    if (!found || kind < found->kind) {
      found = Revocation{kind, revocation_key(token, kind), query->text(1), query->integer(2),
                         query->optional_integer(3)};
    }
  });
  return done ? Result<std::optional<Revocation>>(std::move(found)) : propagate(done);
}

// ---- pruning the deny-list -----------------------------------------------------------

// Below this many expired rows a prune deletes them in place.
constexpr std::int64_t k_min_prune_by_copy = 1024;

// Run `sql_text` (with `parameter` as ?1, when given) to completion: the rows it changed.
Result<std::int64_t> run_counting(Connection& db, const std::string& sql_text,
                                  std::optional<std::int64_t> parameter = std::nullopt) {
  auto query = db.prepare(sql_text);
  if (!query) {
    return propagate(query);
  }
  if (parameter) {
    query->bind(1, *parameter);
  }
  auto done = query->run();
  return done ? Result<std::int64_t>(query->changes()) : propagate(done);
}

// Keep the survivors aside, clear the table whole (its pages freed, not
// row by row), put them back with their rowids, in the caller's
// transaction: cost follows the survivors, not the expired rows. The
// schema (table, indexes, triggers) is untouched, and the revocation epoch
// is restored after the re-inserts' triggers moved it, as deleting in place
// leaves it. The count removed.
Result<std::int64_t> prune_by_copy(Connection& db, UnixSeconds cutoff) {
  auto epoch = db.scalar(sql::k_revocation_epoch);
  if (!epoch) {
    return propagate(epoch);
  }
  if (auto created = db.exec(sql::k_create_survivors); !created) {
    return propagate(created);
  }
  auto kept = run_counting(db, sql::k_copy_survivors, cutoff);
  auto cleared = kept ? run_counting(db, sql::k_clear_revoked_jtis) : kept;
  auto restored = cleared ? run_counting(db, sql::k_restore_survivors) : cleared;
  auto reset = restored ? run_counting(db, sql::k_set_revocation_epoch, *epoch) : restored;
  if (!reset) {
    return reset;
  }
  if (auto dropped = db.exec(sql::k_drop_survivors); !dropped) {
    return propagate(dropped);
  }
  return *cleared - *kept;
}

// Run `body` with PRAGMA secure_delete = FAST, then put the connection's
// setting back. Debian's SQLite defaults to secure_delete = 1, which zeroes
// (and so writes) every page a prune frees: for a million rows, tens of
// thousands of page writes, most of the prune's time. FAST still zeroes
// deleted rows inside pages that are written anyway; freed pages keep
// their old bytes until reused (a deny-list holds jtis, subjects and
// reasons of expired tokens, no token or key).
template <typename Body> auto with_fast_delete(Connection& db, Body&& body) -> decltype(body()) {
  static const std::string k_read = "PRAGMA secure_delete";
  static const std::array<std::string, 3> k_set = {"PRAGMA secure_delete = 0", "PRAGMA secure_delete = 1",
                                                   "PRAGMA secure_delete = FAST"};
  auto previous = db.scalar(k_read);
  if (!previous) {
    return propagate(previous);
  }
  if (auto fast = db.run_cached(k_set[2]); !fast) {
    return propagate(fast);
  }
  auto result = body();
  auto restored =
      db.run_cached(k_set.at(static_cast<std::size_t>(std::clamp<std::int64_t>(*previous, 0, 2))));
  return restored ? result : propagate(restored);
}

// Drop the deny-list rows that expired before `cutoff`, in the caller's
// transaction: by copying the survivors when the expired rows outnumber
// them (a large, mostly expired list), else in place. The count removed.
Result<std::int64_t> prune_rows(Connection& db, UnixSeconds cutoff) {
  auto survivors = single(db, sql::k_count_survivors, [&](Query& q) { q.bind(1, cutoff); });
  if (!survivors) {
    return survivors;
  }
  const std::int64_t enough = std::max(*survivors + 1, k_min_prune_by_copy);
  auto expired = single(db, sql::k_count_expired_up_to, [&](Query& q) { q.bind(1, cutoff).bind(2, enough); });
  if (!expired) {
    return expired;
  }
  return *expired >= enough ? prune_by_copy(db, cutoff) : run_counting(db, sql::k_prune, cutoff);
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
  Result<std::int64_t> revoke_subject(const std::string& subject, UnixSeconds cutoff,
                                      const std::string& reason, UnixSeconds now) override;
  Result<std::optional<Revocation>> find_revocation(const TokenIdentity& token) override;
  Result<std::int64_t> revocation_epoch() override;
  Result<std::vector<Revocation>> list_revocations() override;
  Result<std::int64_t> prune(UnixSeconds now, std::int64_t leeway) override;
  Result<Reservation> reserve(const ReservationRequest& request) override;
  Result<std::int64_t> release_orphaned(const std::function<bool(std::string_view owner)>& alive) override;
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
  // Run `body` (a metering write) in a transaction shared with the metering
  // writes of other threads that arrive meanwhile (group commit).
  Result<void> batched(const std::function<Result<void>()>& body);
  void run_batch(std::span<GroupCommit::Job* const> jobs);
  Result<void> in_savepoint(const std::function<Result<void>()>& body, bool& poisoned);

  // One connection is not safe for interleaved transactions: serialise callers.
  std::recursive_mutex m_mutex;
  Connection m_db;
  Durability m_durability = Durability::full; // as set by prepare_connection
  GroupCommit m_metering;
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

// Rotation refuses the families the cut-off covers (check_presentable);
// counted here, before the cut-off is written, so a repeated revoke counts 0.
Result<std::int64_t> SqliteStore::revoke_subject(const std::string& subject, UnixSeconds cutoff,
                                                 const std::string& reason, UnixSeconds now) {
  const std::lock_guard lock(m_mutex);
  std::int64_t families = 0;
  auto written = write(Durability::full, [&]() -> Result<void> {
    auto counted = single(m_db, sql::k_families_to_cut,
                          [&](Query& q) { q.bind(1, subject).bind(2, cutoff).bind(3, now); });
    if (!counted) {
      return propagate(counted);
    }
    families = *counted;
    return run(m_db, sql::k_revoke_subject,
               [&](Query& q) { q.bind(1, subject).bind(2, cutoff).bind(3, reason).bind(4, now); });
  });
  return written ? Result<std::int64_t>(families) : propagate(written);
}

Result<std::optional<Revocation>> SqliteStore::find_revocation(const TokenIdentity& token) {
  const std::lock_guard lock(m_mutex);
  if (auto placed = check_in_place(m_db); !placed) {
    return propagate(placed);
  }
  return find_first_revocation(m_db, token);
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
  auto pruned = with_fast_delete(m_db, [&] {
    return write(Durability::full, [&]() -> Result<void> {
      auto rows = prune_rows(m_db, now - leeway);
      if (!rows) {
        return propagate(rows);
      }
      removed = *rows;
      return {};
    });
  });
  return pruned ? Result<std::int64_t>(removed) : propagate(pruned);
}

Result<void> SqliteStore::batched(const std::function<Result<void>()>& body) {
  return m_metering.run(body, [this](std::span<GroupCommit::Job* const> jobs) { run_batch(jobs); });
}

// One transaction (synchronous=NORMAL, as every metering write) for a batch,
// each write under its own savepoint: a write that fails is undone alone; a
// transaction that cannot begin or commit fails them all, and nothing of
// theirs stays.
void SqliteStore::run_batch(std::span<GroupCommit::Job* const> jobs) {
  const std::lock_guard lock(m_mutex);
  auto tx = begin(Durability::normal);
  if (!tx) {
    for (auto* job : jobs) {
      job->result = propagate(tx);
    }
    return;
  }
  bool poisoned = false;
  for (auto* job : jobs) {
    job->result =
        poisoned ? Result<void>(fail(Errc::storage, "an earlier write of the same batch could not be undone"))
                 : in_savepoint(*job->body, poisoned);
  }
  const Result<void> committed =
      poisoned ? Result<void>(
          fail(Errc::storage, "a metering write could not be undone; the batch was rolled back"))
               : tx->commit();
  if (!committed) {
    for (auto* job : jobs) {
      job->result = job->result ? committed : job->result;
    }
  }
}

// `body` under a savepoint, rolled back to it when `body` fails; `poisoned`
// when even that failed (the transaction must not be committed).
Result<void> SqliteStore::in_savepoint(const std::function<Result<void>()>& body, bool& poisoned) {
  static const std::string open = "SAVEPOINT metering";
  static const std::string release = "RELEASE metering";
  static const std::string undo = "ROLLBACK TO metering";
  if (auto opened = m_db.run_cached(open); !opened) {
    poisoned = true;
    return opened;
  }
  auto done = body();
  if (!done && !m_db.run_cached(undo)) {
    poisoned = true;
  }
  if (auto released = m_db.run_cached(release); !released) {
    poisoned = true;
    return done ? released : done;
  }
  return done;
}

Result<Reservation> SqliteStore::reserve(const ReservationRequest& request) {
  Reservation reservation;
  auto done = batched([&]() -> Result<void> {
    auto status = read_quota(m_db, request.subject, request.now, request.limit);
    if (!status) {
      return propagate(status);
    }
    reservation = Reservation{0, 0, *status};
    const auto remaining =
        request.limit.transform([&](std::int64_t limit) { return limit - status->used - status->reserved; });
    const auto amount = reservation_amount(request, remaining);
    if (!amount) {
      return {};
    }
    auto id = insert_reservation(m_db, request, *amount);
    if (!id) {
      return propagate(id);
    }
    reservation.id = *id;
    reservation.amount = *amount;
    reservation.status.reserved += *amount;
    return {};
  });
  return done ? Result<Reservation>(reservation) : propagate(done);
}

Result<std::int64_t> SqliteStore::release_orphaned(const std::function<bool(std::string_view owner)>& alive) {
  std::int64_t released = 0;
  auto done = batched([&]() -> Result<void> {
    auto owners = m_db.prepare(sql::k_reservation_owners);
    if (!owners) {
      return propagate(owners);
    }
    std::vector<std::string> dead;
    auto listed = owners->for_each_row([&] {
      if (std::string owner = owners->text(0); !alive(owner)) {
        dead.push_back(std::move(owner));
      }
    });
    for (const auto& owner : dead) {
      auto deleted = listed ? m_db.prepare(sql::k_delete_owned_reservations) : propagate(listed);
      listed = deleted ? deleted->bind(1, owner).run() : propagate(deleted);
      released += listed ? deleted->changes() : 0;
    }
    return listed;
  });
  return done ? Result<std::int64_t>(released) : propagate(done);
}

Result<void> SqliteStore::settle(std::int64_t reservation_id, const UsageRecord& usage) {
  return batched([&]() -> Result<void> {
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
  return read_quota(m_db, subject, now, limit);
}

Result<std::vector<UsageRow>> SqliteStore::usage(const UsageQuery& query) {
  const std::lock_guard lock(m_mutex);
  UsageGroups groups(query.group_by);
  for (const auto& span : plan_usage(query)) {
    if (auto read = read_usage(m_db, span.query, *span.source, groups); !read) {
      return propagate(read);
    }
  }
  // Ungrouped, the one total row exists even over no rows (as SUM would give).
  auto rows = std::move(groups).ordered();
  if (rows.empty() && query.group_by.empty()) {
    rows.emplace_back();
  }
  return rows;
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

namespace {

// Whoever can write the store can grant themselves a refresh family: the
// file and its -wal/-shm must be the user's (or root's), not writable by
// group/others and not links. Checked by name, since closing a descriptor of
// our own would drop SQLite's POSIX locks on the file.
Result<void> check_store_files(const std::filesystem::path& path) {
  constexpr fs::TrustedPath store_file{"store", fs::PathKind::file, fs::Links::refuse};
  for (const auto& name : {path.string(), path.string() + "-wal", path.string() + "-shm"}) {
    if (auto safe = fs::check_private(name, store_file); !safe) {
      return safe;
    }
  }
  return {};
}

} // namespace

Result<std::unique_ptr<Store>> open_sqlite(const std::filesystem::path& path) {
  if (auto created = create_private_file(path); !created) {
    return propagate(created);
  }
  if (auto safe = check_store_files(path); !safe) {
    return propagate(safe);
  }
  auto db = Connection::open(path);
  if (!db) {
    return propagate(db);
  }
  if (auto ready = prepare_connection(*db); !ready) {
    return propagate(ready);
  }
  // Again now that WAL mode made the -wal/-shm, and in case a name changed meanwhile.
  if (auto safe = check_store_files(path); !safe) {
    return propagate(safe);
  }
  return std::make_unique<SqliteStore>(std::move(*db));
}

} // namespace claudegate::store
