// SPDX-License-Identifier: Apache-2.0
// API keys on PostgreSQL (the epoch moves by the schema's triggers).
#include "pg_store.hpp"

#include <fmt/format.h>

#include <string>
#include <utility>

namespace claudegate::store::pg {

namespace {

namespace sql {
const std::string k_columns = "id, name, subject, grant_json, secret_hash, created_at, expires_at, "
                              "last_used_at, revoked_at, revoked_reason, retires_at, rotated_from";
const std::string k_insert =
    "INSERT INTO api_keys (" + k_columns + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
const std::string k_find = "SELECT " + k_columns + " FROM api_keys WHERE id = $1";
const std::string k_list =
    "SELECT " + k_columns + " FROM api_keys ORDER BY created_at DESC, id COLLATE \"C\"";
const std::string k_exists = "SELECT 1 FROM api_keys WHERE id = $1 FOR UPDATE";
const std::string k_revoke =
    "UPDATE api_keys SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL";
const std::string k_retire =
    "UPDATE api_keys SET retires_at = $2 WHERE id = $1 AND (retires_at IS NULL OR retires_at > $2)";
const std::string k_touch =
    "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";
} // namespace sql

// The record of row `r` of a k_columns query; the grant is null when unreadable.
ApiKeyRecord read_key(const Rows& rows, int r) {
  ApiKeyRecord key;
  key.id = rows.text(r, 0);
  key.name = rows.text(r, 1);
  key.subject = rows.text(r, 2);
  key.grant = json::Json::parse(rows.text(r, 3), nullptr, false);
  key.secret_hash = rows.text(r, 4);
  key.created_at = rows.integer(r, 5);
  key.expires_at = rows.integer(r, 6);
  key.last_used_at = rows.optional_integer(r, 7);
  key.revoked_at = rows.optional_integer(r, 8);
  key.revoked_reason = rows.optional_text(r, 9);
  key.retires_at = rows.optional_integer(r, 10);
  key.rotated_from = rows.optional_text(r, 11);
  return key;
}

// Fail with claim_mismatch unless key `id` exists (locking it meanwhile).
Result<void> check_known(Connection& db, const std::string& id) {
  auto exists = db.query(sql::k_exists, Params().add(id));
  if (!exists) {
    return propagate(exists);
  }
  if (exists->size() == 0) {
    return fail(Errc::claim_mismatch,
                fmt::format("unknown API key {}; `claudegate revoke --list` shows the keys", id));
  }
  return {};
}

Result<void> insert_key(Connection& db, const ApiKeyRecord& key) {
  auto done = db.query(sql::k_insert, Params()
                                          .add(key.id)
                                          .add(key.name)
                                          .add(key.subject)
                                          .add(key.grant.dump())
                                          .add(key.secret_hash)
                                          .add(key.created_at)
                                          .add(key.expires_at)
                                          .add(key.last_used_at)
                                          .add(key.revoked_at)
                                          .add(key.revoked_reason)
                                          .add(key.retires_at)
                                          .add(key.rotated_from));
  return done ? Result<void>{} : propagate(done);
}

Result<void> retire_key(Connection& db, const std::string& id, UnixSeconds at) {
  if (auto known = check_known(db, id); !known) {
    return known;
  }
  auto done = db.query(sql::k_retire, Params().add(id).add(at));
  return done ? Result<void>{} : propagate(done);
}

} // namespace

Result<void> PgStore::create_api_key(const ApiKeyRecord& key) {
  return transaction("create an API key", [&](Connection& db) { return insert_key(db, key); });
}

Result<void> PgStore::rotate_api_key(const ApiKeyRecord& successor, UnixSeconds predecessor_until) {
  const std::string predecessor = successor.rotated_from.value_or("");
  return transaction("rotate an API key", [&](Connection& db) -> Result<void> {
    auto inserted = insert_key(db, successor);
    return inserted ? retire_key(db, predecessor, predecessor_until) : inserted;
  });
}

Result<std::optional<ApiKeyRecord>> PgStore::find_api_key(const std::string& id) {
  return with_connection("look up an API key", [&](Connection& db) -> Result<std::optional<ApiKeyRecord>> {
    auto rows = db.query(sql::k_find, Params().add(id));
    if (!rows || rows->size() == 0) {
      return rows ? Result<std::optional<ApiKeyRecord>>(std::nullopt) : propagate(rows);
    }
    ApiKeyRecord key = read_key(*rows, 0);
    if (key.grant.is_discarded()) {
      return fail(Errc::storage,
                  fmt::format("API key {} has an unreadable grant in store {}", key.id, m_server.shown));
    }
    return key;
  });
}

Result<std::vector<ApiKeyRecord>> PgStore::list_api_keys() {
  return with_connection("list API keys", [&](Connection& db) -> Result<std::vector<ApiKeyRecord>> {
    auto rows = db.query(sql::k_list);
    if (!rows) {
      return propagate(rows);
    }
    std::vector<ApiKeyRecord> keys;
    for (int row = 0; row < rows->size(); ++row) {
      keys.push_back(read_key(*rows, row));
    }
    return keys;
  });
}

Result<void> PgStore::revoke_api_key(const std::string& id, const std::string& reason, UnixSeconds now) {
  return transaction("revoke an API key", [&](Connection& db) -> Result<void> {
    if (auto known = check_known(db, id); !known) {
      return known;
    }
    auto done = db.query(sql::k_revoke, Params().add(id).add(now).add(reason));
    return done ? Result<void>{} : propagate(done);
  });
}

Result<void> PgStore::retire_api_key(const std::string& id, UnixSeconds at) {
  return transaction("retire an API key", [&](Connection& db) { return retire_key(db, id, at); });
}

Result<void> PgStore::touch_api_key(const std::string& id, UnixSeconds now) {
  return with_connection("note an API key's use", [&](Connection& db) -> Result<void> {
    auto done = db.query(sql::k_touch, Params().add(id).add(now));
    return done ? Result<void>{} : propagate(done);
  });
}

} // namespace claudegate::store::pg
