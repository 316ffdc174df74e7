// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL store's front: opening (connect, migrate) and the audit
// log. The rows of each concept live beside it: schema.cpp, families.cpp,
// revocations.cpp, usage.cpp, leases.cpp, api_keys.cpp; the connections in
// pg_util.cpp and pool.cpp.
#include "claudegate/store/postgres.hpp"

#include "pg_store.hpp"

#include <memory>
#include <string>

namespace claudegate::store::pg {

namespace {
const std::string k_insert_audit =
    "INSERT INTO audit_events (at, kind, subject, detail) VALUES ($1, $2, $3, $4)";
} // namespace

Result<void> insert_audit(Connection& db, const AuditEvent& event) {
  auto done =
      db.query(k_insert_audit, Params().add(event.at).add(event.kind).add(event.subject).add(event.detail));
  return done ? Result<void>{} : propagate(done);
}

// Connect once now, so a wrong URI or password fails at open, and bring
// the schema up to date.
Result<void> PgStore::open() {
  return with_connection("open", [](Connection& db) { return prepare_schema(db); });
}

Result<void> PgStore::audit(const AuditEvent& event) {
  return transaction("write the audit log", [&](Connection& db) { return insert_audit(db, event); });
}

} // namespace claudegate::store::pg

namespace claudegate::store {

Result<std::unique_ptr<Store>> open_postgres(const std::string& uri) {
  auto store = std::make_unique<pg::PgStore>(pg::server_of(uri));
  if (auto ready = store->open(); !ready) {
    return propagate(ready);
  }
  return store;
}

} // namespace claudegate::store
