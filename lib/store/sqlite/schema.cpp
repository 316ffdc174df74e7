// SPDX-License-Identifier: Apache-2.0
#include "sqlite_store.hpp"

#include "claudegate/base/fs.hpp"
#include "claudegate/store/sqlite.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>
#include <thread>

namespace claudegate::store::sqlite_backend {

namespace {

constexpr int k_schema_version = 5;
constexpr int k_busy_timeout_ms = 30'000;
constexpr auto k_wal_retry_pause = std::chrono::milliseconds(10);

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
)sql",
                                                                         R"sql(
-- API keys: the SHA-256 of the secret only, never the key.
CREATE TABLE api_keys (
  id             TEXT PRIMARY KEY,
  name           TEXT NOT NULL,
  subject        TEXT NOT NULL,
  grant_json     TEXT NOT NULL,
  secret_hash    TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  last_used_at   INTEGER,
  revoked_at     INTEGER,
  revoked_reason TEXT,
  retires_at     INTEGER,
  rotated_from   TEXT
);
CREATE INDEX api_keys_by_subject ON api_keys (subject);
-- Every change but last use moves the revocation epoch on, so a gateway
-- caching keys rechecks them (a revocation, a rotation, an edit in the shell).
CREATE TRIGGER api_keys_update_epoch AFTER UPDATE OF name, subject, grant_json, secret_hash, created_at,
  expires_at, revoked_at, revoked_reason, retires_at, rotated_from ON api_keys
  BEGIN UPDATE revocation_epoch SET epoch = epoch + 1; END;
CREATE TRIGGER api_keys_delete_epoch AFTER DELETE ON api_keys
  BEGIN UPDATE revocation_epoch SET epoch = epoch + 1; END;
)sql",
                                                                         R"sql(
-- Quota leases: part of a subject's quota of one UTC day held by a gateway
-- process (owner) in memory. Its outstanding tokens count against everyone
-- else while expires_at is ahead; a settled row moves its tokens from here
-- to the ledger in one transaction.
CREATE TABLE quota_leases (
  id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: a process may still name a lease gone
  subject     TEXT NOT NULL,
  day         INTEGER NOT NULL,
  outstanding INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  owner       TEXT NOT NULL
);
CREATE INDEX quota_leases_by_subject ON quota_leases (subject, day);
)sql"};

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

} // namespace

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

} // namespace claudegate::store::sqlite_backend

namespace claudegate::store {

int schema_version() {
  return sqlite_backend::k_schema_version;
}

} // namespace claudegate::store
