// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL backend's private parts, shared by its files: the PgStore
// class and the row helpers each concept's file offers the others.
// Internal to lib/store/postgres/.
#pragma once

#include "../backend_rules.hpp"
#include "claudegate/store/store.hpp"
#include "pg_util.hpp"
#include "pool.hpp"

#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace claudegate::store::pg {

// ---- opening (schema.cpp) ---------------------------------------------------------

// Migrate the database to the current schema, or refuse a newer one untouched.
Result<void> prepare_schema(Connection& db);
int schema_version();

// ---- shared rows ------------------------------------------------------------------

// Append `event` to the audit log (store_postgres.cpp).
Result<void> insert_audit(Connection& db, const AuditEvent& event);

// Serialise the quota writes of `subjects` (in a set: always locked in the
// same order, so two transactions never wait on each other in a cycle)
// until the transaction ends, across every process (usage.cpp).
Result<void> lock_subjects(Connection& db, const std::set<std::string>& subjects);

// Today's settled and held tokens of `subject` (usage.cpp).
Result<QuotaStatus> read_quota(Connection& db, const std::string& subject, UnixSeconds now,
                               std::optional<std::int64_t> limit);

// A ledger batch's rows with their shares of the daily and per-subject
// rollups, a statement each whatever their number (usage.cpp).
Result<void> write_usage(Connection& db, const rules::LedgerPlan& plan);

using rules::PresentedToken;

// The LISTEN side of wait_for_revocation: its own connection, not the pool's.
class RevocationListener {
public:
  explicit RevocationListener(const Server& server) : m_server(server) {}
  Result<bool> wait(std::chrono::milliseconds timeout);

private:
  Result<void> listen();
  Result<bool> drain();

  const Server& m_server;
  std::mutex m_mutex;
  std::optional<Connection> m_conn;
  Backoff m_backoff;
};

class PgStore final : public Store {
public:
  explicit PgStore(Server server) : m_server(std::move(server)), m_pool(m_server), m_listener(m_server) {}

  // Connect and migrate (open_postgres).
  Result<void> open();

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
  Result<bool> wait_for_revocation(std::chrono::milliseconds timeout) override;
  Result<std::vector<Revocation>> list_revocations() override;
  Result<std::int64_t> prune(UnixSeconds now, std::int64_t leeway) override;
  Result<Reservation> reserve(const ReservationRequest& request) override;
  Result<std::int64_t> release_orphaned(const std::function<bool(std::string_view owner)>& alive) override;
  Result<void> settle(std::int64_t reservation_id, const UsageRecord& usage) override;
  Result<LeaseGrant> take_lease(const LeaseRequest& request, UnixSeconds now) override;
  Result<std::vector<std::int64_t>> extend_leases(const std::vector<std::int64_t>& ids, UnixSeconds now,
                                                  UnixSeconds expires_at) override;
  Result<void> write_ledger(const std::vector<LedgerEntry>& entries) override;
  Result<QuotaStatus> quota_status(const std::string& subject, UnixSeconds now,
                                   std::optional<std::int64_t> limit) override;
  Result<std::vector<UsageRow>> usage(const UsageQuery& query) override;
  Result<std::vector<SubjectQuota>> subject_quotas(UnixSeconds now) override;
  Result<void> audit(const AuditEvent& event) override;
  Result<void> rotate_api_key(const ApiKeyRecord& successor, UnixSeconds predecessor_until) override;
  Result<void> create_api_key(const ApiKeyRecord& key) override;
  Result<std::optional<ApiKeyRecord>> find_api_key(const std::string& id) override;
  Result<std::vector<ApiKeyRecord>> list_api_keys() override;
  Result<void> revoke_api_key(const std::string& id, const std::string& reason, UnixSeconds now) override;
  Result<void> retire_api_key(const std::string& id, UnixSeconds at) override;
  Result<void> touch_api_key(const std::string& id, UnixSeconds now) override;

private:
  // Run `body(connection)` on a pooled connection for `op`; its result.
  template <typename Body>
  auto with_connection(std::string_view op, Body&& body) -> decltype(body(std::declval<Connection&>()));
  // Run `body(connection)` in one transaction, committed when it succeeds.
  template <typename Body> Result<void> transaction(std::string_view op, Body&& body);
  Result<RotatedFamily> punish_reuse(Connection& db, Transaction& tx, const PresentedToken& token,
                                     UnixSeconds now, const Error& reuse);

  Server m_server;
  Pool m_pool;
  RevocationListener m_listener;
};

template <typename Body>
auto PgStore::with_connection(std::string_view op, Body&& body)
    -> decltype(body(std::declval<Connection&>())) {
  auto conn = m_pool.acquire(op);
  if (!conn) {
    return propagate(conn);
  }
  return body(**conn);
}

template <typename Body> Result<void> PgStore::transaction(std::string_view op, Body&& body) {
  return with_connection(op, [&](Connection& db) -> Result<void> {
    auto tx = Transaction::begin(db);
    if (!tx) {
      return propagate(tx);
    }
    if (auto done = body(db); !done) {
      return done;
    }
    return tx->commit();
  });
}

} // namespace claudegate::store::pg
