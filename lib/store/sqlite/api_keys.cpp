// SPDX-License-Identifier: Apache-2.0
#include "sqlite_store.hpp"

#include <fmt/format.h>

#include <string>
#include <utility>

namespace claudegate::store::sqlite_backend {

namespace {

namespace sql {
const std::string k_columns = "id, name, subject, grant_json, secret_hash, created_at, expires_at, "
                              "last_used_at, revoked_at, revoked_reason, retires_at, rotated_from";
const std::string k_insert =
    "INSERT INTO api_keys (" + k_columns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const std::string k_find = "SELECT " + k_columns + " FROM api_keys WHERE id = ?";
const std::string k_list = "SELECT " + k_columns + " FROM api_keys ORDER BY created_at DESC, id";
const std::string k_exists = "SELECT 1 FROM api_keys WHERE id = ?";
const std::string k_revoke =
    "UPDATE api_keys SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL";
const std::string k_retire =
    "UPDATE api_keys SET retires_at = ?2 WHERE id = ?1 AND (retires_at IS NULL OR retires_at > ?2)";
const std::string k_touch =
    "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)";
} // namespace sql

void bind_optional(Query& q, int index, const std::optional<std::string>& value) {
  value ? q.bind(index, *value) : q.bind(index, std::optional<std::int64_t>{});
}

std::optional<std::string> optional_text(const Query& q, int column) {
  return q.is_null(column) ? std::nullopt : std::optional<std::string>(q.text(column));
}

// The record of the current row of a k_columns query; the grant is null when unreadable.
ApiKeyRecord read_key(const Query& q) {
  ApiKeyRecord key;
  key.id = q.text(0);
  key.name = q.text(1);
  key.subject = q.text(2);
  key.grant = json::Json::parse(q.text(3), nullptr, false);
  key.secret_hash = q.text(4);
  key.created_at = q.integer(5);
  key.expires_at = q.integer(6);
  key.last_used_at = q.optional_integer(7);
  key.revoked_at = q.optional_integer(8);
  key.revoked_reason = optional_text(q, 9);
  key.retires_at = q.optional_integer(10);
  key.rotated_from = optional_text(q, 11);
  return key;
}

Result<void> readable(const Connection& db, const ApiKeyRecord& key) {
  if (!key.grant.is_discarded()) {
    return {};
  }
  return fail(Errc::storage,
              fmt::format("API key {} has an unreadable grant in store {}", key.id, db.path()));
}

// Fail with claim_mismatch unless key `id` exists.
Result<void> check_known(Connection& db, const std::string& id) {
  auto exists = single(db, sql::k_exists, [&](Query& q) { q.bind(1, id); });
  if (!exists) {
    return propagate(exists);
  }
  if (*exists == 0) {
    return fail(Errc::claim_mismatch,
                fmt::format("unknown API key {}; `claudegate revoke --list` shows the keys", id));
  }
  return {};
}

Result<void> insert_key(Connection& db, const ApiKeyRecord& key) {
  return run(db, sql::k_insert, [&](Query& q) {
    q.bind(1, key.id).bind(2, key.name).bind(3, key.subject).bind(4, key.grant.dump());
    q.bind(5, key.secret_hash).bind(6, key.created_at).bind(7, key.expires_at).bind(8, key.last_used_at);
    q.bind(9, key.revoked_at).bind(11, key.retires_at);
    bind_optional(q, 10, key.revoked_reason);
    bind_optional(q, 12, key.rotated_from);
  });
}

// Let known key `id` work only until `at` (an earlier retirement stays).
Result<void> retire_key(Connection& db, const std::string& id, UnixSeconds at) {
  if (auto known = check_known(db, id); !known) {
    return known;
  }
  return run(db, sql::k_retire, [&](Query& q) { q.bind(1, id).bind(2, at); });
}

} // namespace

Result<void> SqliteStore::create_api_key(const ApiKeyRecord& key) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&] { return insert_key(m_db, key); });
}

Result<void> SqliteStore::rotate_api_key(const ApiKeyRecord& successor, UnixSeconds predecessor_until) {
  const std::lock_guard lock(m_mutex);
  const std::string predecessor = successor.rotated_from.value_or("");
  return write(Durability::full, [&]() -> Result<void> {
    auto inserted = insert_key(m_db, successor);
    return inserted ? retire_key(m_db, predecessor, predecessor_until) : inserted;
  });
}

Result<std::optional<ApiKeyRecord>> SqliteStore::find_api_key(const std::string& id) {
  const std::lock_guard lock(m_mutex);
  auto query = m_db.prepare(sql::k_find);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, id);
  auto row = query->step();
  if (!row || !*row) {
    return row ? Result<std::optional<ApiKeyRecord>>(std::nullopt) : propagate(row);
  }
  ApiKeyRecord key = read_key(*query);
  auto ok = readable(m_db, key);
  return ok ? Result<std::optional<ApiKeyRecord>>(std::move(key)) : propagate(ok);
}

Result<std::vector<ApiKeyRecord>> SqliteStore::list_api_keys() {
  const std::lock_guard lock(m_mutex);
  auto query = m_db.prepare(sql::k_list);
  if (!query) {
    return propagate(query);
  }
  return query->collect<ApiKeyRecord>(read_key);
}

Result<void> SqliteStore::revoke_api_key(const std::string& id, const std::string& reason, UnixSeconds now) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&]() -> Result<void> {
    if (auto known = check_known(m_db, id); !known) {
      return known;
    }
    return run(m_db, sql::k_revoke, [&](Query& q) { q.bind(1, id).bind(2, now).bind(3, reason); });
  });
}

Result<void> SqliteStore::retire_api_key(const std::string& id, UnixSeconds at) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&] { return retire_key(m_db, id, at); });
}

// Last use is a hint for operators, not a security fact: a metering write
// (group commit, synchronous=NORMAL).
Result<void> SqliteStore::touch_api_key(const std::string& id, UnixSeconds now) {
  return batched([&] { return run(m_db, sql::k_touch, [&](Query& q) { q.bind(1, id).bind(2, now); }); });
}

} // namespace claudegate::store::sqlite_backend
