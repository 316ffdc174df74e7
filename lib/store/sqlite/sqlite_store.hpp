// SPDX-License-Identifier: Apache-2.0
// The SQLite backend's private parts, shared by its files: the SqliteStore
// class, the statement helpers, the opening checks. Internal to lib/store/sqlite/.
#pragma once

#include "../backend_rules.hpp"
#include "../group_commit.hpp"
#include "claudegate/store/store.hpp"
#include "file_events.hpp"
#include "sqlite_util.hpp"

#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>

namespace claudegate::store::sqlite_backend {

using sqlite::Connection;
using sqlite::Query;
using sqlite::Transaction;

// A write transaction's synchronous setting (see SqliteStore::begin).
enum class Durability { full, normal };

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

// ---- opening (schema.cpp) -----------------------------------------------------

// Create `path` with mode 0600 when missing, so SQLite (and its -wal/-shm,
// which copy the mode) never makes it world-readable under a loose umask.
Result<void> create_private_file(const std::filesystem::path& path);

// Connection settings, then the schema (migrations, WAL, busy timeout).
Result<void> prepare_connection(Connection& db);

// SQLite keeps using a file deleted or replaced under it (the open inode
// lives on): usage written there vanishes and revocations written to the new
// file go unseen. Refuse instead.
Result<void> check_in_place(const Connection& db);

// The store file and its -wal/-shm are the user's and private (fs::check_private).
Result<void> check_store_files(const std::filesystem::path& path);

// ---- audit (store_sqlite.cpp) ------------------------------------------------

Result<void> insert_audit(Connection& db, const AuditEvent& event);

// ---- metering (usage.cpp, leases.cpp) -------------------------------------------

Result<std::int64_t> used_on_day(Connection& db, const std::string& subject, UnixSeconds now);
// The outstanding tokens of `subject`'s leases of `now`'s UTC day that live at `now`.
Result<std::int64_t> leased_on_day(Connection& db, const std::string& subject, UnixSeconds now);
Result<QuotaStatus> read_quota(Connection& db, const std::string& subject, UnixSeconds now,
                               std::optional<std::int64_t> limit);
// A ledger batch's rows with their shares of the daily and per-subject rollups.
Result<void> write_usage(Connection& db, const rules::LedgerPlan& plan);

// ---- the store ------------------------------------------------------------------

using rules::PresentedToken;

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
  // Wakes on writes to the store's files (inotify; by any process).
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
  std::mutex m_events_mutex; // wait_for_revocation's watch, made on first use
  std::optional<FileEvents> m_events;
};

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

} // namespace claudegate::store::sqlite_backend
