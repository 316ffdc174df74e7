// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL schema and its forward-only migrations: the tables of the
// SQLite backend (same names and columns, BIGINT for INTEGER), the
// revocation epoch moved by triggers that also NOTIFY claudegate_revocation,
// and a claudegate_schema table holding the version.
#include "pg_store.hpp"

#include <fmt/format.h>

#include <array>
#include <string>

namespace claudegate::store::pg {

namespace {

constexpr int k_schema_version = 1;

// Taken with pg_advisory_xact_lock by the migrating transaction: replicas
// starting together migrate one after the other, the later ones finding
// nothing to do. ("claudeg" in ASCII.)
constexpr std::int64_t k_migration_lock = 0x636c6175646567;

// k_migrations[n] takes a database from version n to n + 1.
constexpr std::array<std::string_view, k_schema_version> k_migrations = {R"sql(
CREATE TABLE refresh_families (
  family_id      TEXT PRIMARY KEY,
  subject        TEXT NOT NULL,
  grant_json     TEXT NOT NULL,
  created_at     BIGINT NOT NULL,
  expires_at     BIGINT NOT NULL,
  revoked_at     BIGINT,
  revoked_reason TEXT
);
CREATE INDEX refresh_families_by_subject ON refresh_families (subject);

CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  family_id  TEXT NOT NULL REFERENCES refresh_families (family_id) ON DELETE CASCADE,
  generation BIGINT NOT NULL,
  state      TEXT NOT NULL CHECK (state IN ('active', 'used', 'revoked')),
  issued_at  BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at    BIGINT,
  UNIQUE (family_id, generation)
);
CREATE UNIQUE INDEX refresh_tokens_one_active ON refresh_tokens (family_id) WHERE state = 'active';

CREATE TABLE revoked_jtis (
  jti        TEXT PRIMARY KEY,
  subject    TEXT NOT NULL,
  reason     TEXT NOT NULL,
  revoked_at BIGINT NOT NULL,
  expires_at BIGINT
);
CREATE INDEX revoked_jtis_by_expiry ON revoked_jtis (expires_at);

CREATE TABLE subject_cutoffs (
  subject    TEXT PRIMARY KEY,
  cutoff     BIGINT NOT NULL,
  reason     TEXT NOT NULL,
  revoked_at BIGINT NOT NULL
);

CREATE TABLE usage_ledger (
  id                 BIGSERIAL PRIMARY KEY,
  at                 BIGINT NOT NULL,
  subject            TEXT NOT NULL,
  jti                TEXT NOT NULL,
  model              TEXT NOT NULL,
  status             BIGINT NOT NULL,
  input_tokens       BIGINT NOT NULL,
  output_tokens      BIGINT NOT NULL,
  cache_read_tokens  BIGINT NOT NULL,
  cache_write_tokens BIGINT NOT NULL,
  latency_ms         BIGINT NOT NULL,
  request_id         TEXT NOT NULL,
  stream             BIGINT NOT NULL,
  quota_limit        BIGINT,
  estimated          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX usage_ledger_by_at ON usage_ledger (at);
CREATE INDEX usage_ledger_by_subject_at ON usage_ledger (subject, at);

-- Sums per (UTC day, subject, model), kept in each ledger insert's
-- transaction: quotas and whole-day reports never scan the ledger.
CREATE TABLE usage_daily (
  day                BIGINT NOT NULL,
  subject            TEXT NOT NULL,
  model              TEXT NOT NULL,
  requests           BIGINT NOT NULL,
  input_tokens       BIGINT NOT NULL,
  output_tokens      BIGINT NOT NULL,
  cache_read_tokens  BIGINT NOT NULL,
  cache_write_tokens BIGINT NOT NULL,
  estimated_requests BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (day, subject, model)
);
CREATE INDEX usage_daily_by_subject ON usage_daily (subject, day);

CREATE TABLE usage_subjects (
  subject     TEXT PRIMARY KEY,
  last_at     BIGINT NOT NULL,
  quota_limit BIGINT
);

CREATE TABLE quota_reservations (
  id         BIGSERIAL PRIMARY KEY,
  subject    TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  estimate   BIGINT NOT NULL,
  owner      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX quota_reservations_by_subject ON quota_reservations (subject, created_at);

CREATE TABLE quota_leases (
  id          BIGSERIAL PRIMARY KEY,
  subject     TEXT NOT NULL,
  day         BIGINT NOT NULL,
  outstanding BIGINT NOT NULL,
  expires_at  BIGINT NOT NULL,
  owner       TEXT NOT NULL
);
CREATE INDEX quota_leases_by_subject ON quota_leases (subject, day);

CREATE TABLE audit_events (
  id      BIGSERIAL PRIMARY KEY,
  at      BIGINT NOT NULL,
  kind    TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail  TEXT NOT NULL
);
CREATE INDEX audit_events_by_at ON audit_events (at);

CREATE TABLE api_keys (
  id             TEXT PRIMARY KEY,
  name           TEXT NOT NULL,
  subject        TEXT NOT NULL,
  grant_json     TEXT NOT NULL,
  secret_hash    TEXT NOT NULL,
  created_at     BIGINT NOT NULL,
  expires_at     BIGINT NOT NULL,
  last_used_at   BIGINT,
  revoked_at     BIGINT,
  revoked_reason TEXT,
  retires_at     BIGINT,
  rotated_from   TEXT
);
CREATE INDEX api_keys_by_subject ON api_keys (subject);

-- A counter every revocation write moves on, by trigger (so a row written
-- with psql counts too), with a NOTIFY delivered at commit: every gateway
-- caching verified tokens rechecks them (DESIGN.md §3).
CREATE TABLE revocation_epoch (
  id    BIGINT PRIMARY KEY CHECK (id = 1),
  epoch BIGINT NOT NULL
);
INSERT INTO revocation_epoch (id, epoch) VALUES (1, 0);
CREATE FUNCTION claudegate_revocation_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE revocation_epoch SET epoch = epoch + 1 WHERE id = 1;
  PERFORM pg_notify('claudegate_revocation', '');
  RETURN NULL;
END $$;
CREATE TRIGGER revoked_jtis_epoch AFTER INSERT OR UPDATE ON revoked_jtis
  FOR EACH ROW EXECUTE FUNCTION claudegate_revocation_moved();
CREATE TRIGGER subject_cutoffs_epoch AFTER INSERT OR UPDATE ON subject_cutoffs
  FOR EACH ROW EXECUTE FUNCTION claudegate_revocation_moved();
CREATE TRIGGER refresh_families_revoke_epoch AFTER UPDATE OF revoked_at ON refresh_families
  FOR EACH ROW EXECUTE FUNCTION claudegate_revocation_moved();
CREATE TRIGGER api_keys_update_epoch AFTER UPDATE OF name, subject, grant_json, secret_hash, created_at,
  expires_at, revoked_at, revoked_reason, retires_at, rotated_from ON api_keys
  FOR EACH ROW EXECUTE FUNCTION claudegate_revocation_moved();
CREATE TRIGGER api_keys_delete_epoch AFTER DELETE ON api_keys
  FOR EACH ROW EXECUTE FUNCTION claudegate_revocation_moved();
)sql"};

namespace sql {
const std::string k_has_version = "SELECT to_regclass('claudegate_schema') IS NOT NULL";
const std::string k_version = "SELECT COALESCE(MAX(version), 0) FROM claudegate_schema";
const std::string k_lock = fmt::format("SELECT pg_advisory_xact_lock({})", k_migration_lock);
const std::string k_create_version =
    "CREATE TABLE IF NOT EXISTS claudegate_schema (version INTEGER NOT NULL)";
const std::string k_stamp =
    "DELETE FROM claudegate_schema; INSERT INTO claudegate_schema (version) VALUES ({})";
} // namespace sql

Result<void> refuse_newer(const Server& server, std::int64_t version) {
  if (version <= k_schema_version) {
    return {};
  }
  return fail(Errc::storage,
              fmt::format("store {} was written by a newer claudegate (schema version {}, this "
                          "build knows up to {}); upgrade claudegate. The database was not changed.",
                          server.shown, version, k_schema_version));
}

// The database's schema version: -1 before claudegate's first open.
Result<std::int64_t> read_version(Connection& db) {
  auto exists = db.query(sql::k_has_version);
  if (!exists || exists->text(0, 0) != "t") {
    return exists ? Result<std::int64_t>(-1) : propagate(exists);
  }
  auto version = db.query(sql::k_version);
  return version ? Result<std::int64_t>(version->scalar()) : propagate(version);
}

// Apply the missing migrations in one transaction under the migration lock,
// re-reading the version under it so concurrent first opens migrate once.
Result<void> migrate(Connection& db) {
  db.set_op("migrate the schema");
  auto tx = Transaction::begin(db);
  auto locked = tx ? db.exec(sql::k_lock) : propagate(tx);
  auto created = locked ? db.exec(sql::k_create_version) : locked;
  auto version = created ? read_version(db) : propagate(created);
  if (!version) {
    return propagate(version);
  }
  if (auto newer = refuse_newer(db.server(), *version); !newer) {
    return newer;
  }
  for (auto step = static_cast<std::size_t>(std::max<std::int64_t>(*version, 0)); step < k_migrations.size();
       ++step) {
    if (auto applied = db.exec(std::string(k_migrations[step])); !applied) {
      return applied;
    }
  }
  if (auto stamped = db.exec(fmt::format(fmt::runtime(sql::k_stamp), k_schema_version)); !stamped) {
    return stamped;
  }
  return tx->commit();
}

} // namespace

// The version is read before anything writes, so a newer database is
// refused unaltered, and a current one opens without taking the lock.
Result<void> prepare_schema(Connection& db) {
  db.set_op("read the schema version");
  auto version = read_version(db);
  if (!version) {
    return propagate(version);
  }
  if (auto newer = refuse_newer(db.server(), *version); !newer) {
    return newer;
  }
  return *version == k_schema_version ? Result<void>{} : migrate(db);
}

int schema_version() {
  return k_schema_version;
}

} // namespace claudegate::store::pg
