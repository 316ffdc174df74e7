// SPDX-License-Identifier: Apache-2.0
// Quota leases and the write-behind ledger on SQLite: a lease is taken or
// grown in one BEGIN IMMEDIATE (lease_amounts decides), ledger rows are
// written in batches with their tokens leaving their lease in the same
// transaction.
#include "sqlite_store.hpp"

#include "claudegate/base/duration.hpp"

namespace claudegate::store::sqlite_backend {

namespace {

namespace lease_sql {
const std::string k_leased =
    "SELECT COALESCE(SUM(outstanding), 0) FROM quota_leases WHERE subject = ? AND day = ? AND expires_at > ?";
const std::string k_live_lease =
    "SELECT outstanding FROM quota_leases WHERE id = ? AND subject = ? AND day = ? AND owner = ? "
    "AND expires_at > ?";
const std::string k_insert_lease = "INSERT INTO quota_leases (subject, day, outstanding, expires_at, owner) "
                                   "VALUES (?, ?, ?, ?, ?) RETURNING id";
const std::string k_grow_lease =
    "UPDATE quota_leases SET outstanding = outstanding + ?, expires_at = MAX(expires_at, ?) WHERE id = ? "
    "RETURNING outstanding";
const std::string k_delete_expired = "DELETE FROM quota_leases WHERE expires_at <= ?";
const std::string k_extend_lease =
    "UPDATE quota_leases SET expires_at = MAX(expires_at, ?) WHERE id = ? AND expires_at > ?";
const std::string k_spend_lease =
    "UPDATE quota_leases SET outstanding = MAX(0, outstanding - ?) WHERE id = ?";
const std::string k_close_lease = "DELETE FROM quota_leases WHERE id = ?";
} // namespace lease_sql

// The outstanding tokens of live lease `request.lease_id` (nullopt: none,
// or no longer live, or not the caller's for this subject and day).
Result<std::optional<std::int64_t>> live_lease(Connection& db, const LeaseRequest& request, UnixSeconds now) {
  if (request.lease_id == 0) {
    return std::optional<std::int64_t>{};
  }
  auto query = db.prepare(lease_sql::k_live_lease);
  if (!query) {
    return propagate(query);
  }
  const auto& r = request.reservation;
  query->bind(1, request.lease_id).bind(2, r.subject).bind(3, duration::utc_day_start(r.now));
  query->bind(4, r.owner).bind(5, now);
  auto row = query->step();
  if (!row) {
    return propagate(row);
  }
  return *row ? std::optional<std::int64_t>(query->integer(0)) : std::nullopt;
}

// Grow live lease `id` by `added`; its outstanding after.
Result<std::int64_t> grow_lease(Connection& db, std::int64_t id, std::int64_t added, UnixSeconds expires_at) {
  return single(db, lease_sql::k_grow_lease,
                [&](Query& q) { q.bind(1, added).bind(2, expires_at).bind(3, id); });
}

Result<std::int64_t> insert_lease(Connection& db, const LeaseRequest& request, std::int64_t added) {
  const auto& r = request.reservation;
  return single(db, lease_sql::k_insert_lease, [&](Query& q) {
    q.bind(1, r.subject).bind(2, duration::utc_day_start(r.now)).bind(3, added);
    q.bind(4, request.expires_at).bind(5, r.owner);
  });
}

// Grant `amounts` onto the request's lease, or a new one when it is gone.
Result<void> apply_grant(Connection& db, const LeaseRequest& request, bool live, LeaseGrant& grant) {
  if (live) {
    auto outstanding = grow_lease(db, request.lease_id, grant.amounts.added, request.expires_at);
    if (!outstanding) {
      return propagate(outstanding);
    }
    grant.lease_id = request.lease_id;
    grant.outstanding = *outstanding;
  } else {
    auto id = insert_lease(db, request, grant.amounts.added);
    if (!id) {
      return propagate(id);
    }
    grant.lease_id = *id;
    grant.outstanding = grant.amounts.added;
  }
  grant.expires_at = request.expires_at;
  grant.held += grant.amounts.added;
  return {};
}

// The leases' part of a ledger batch: what each spent, which closed.
Result<void> write_leases(Connection& db, const rules::LedgerPlan& plan) {
  for (const auto& [lease_id, tokens] : plan.spent) {
    auto spent = run(db, lease_sql::k_spend_lease, [&](Query& q) { q.bind(1, tokens).bind(2, lease_id); });
    if (!spent) {
      return spent;
    }
  }
  for (const std::int64_t lease_id : plan.closed) {
    if (auto closed = run(db, lease_sql::k_close_lease, [&](Query& q) { q.bind(1, lease_id); }); !closed) {
      return closed;
    }
  }
  return {};
}

} // namespace

Result<std::int64_t> leased_on_day(Connection& db, const std::string& subject, UnixSeconds now) {
  return single(db, lease_sql::k_leased,
                [&](Query& q) { q.bind(1, subject).bind(2, duration::utc_day_start(now)).bind(3, now); });
}

Result<LeaseGrant> SqliteStore::take_lease(const LeaseRequest& request, UnixSeconds now) {
  const std::lock_guard lock(m_mutex);
  LeaseGrant grant;
  auto done = write(Durability::normal, [&]() -> Result<void> {
    if (auto swept = run(m_db, lease_sql::k_delete_expired, [&](Query& q) { q.bind(1, now); }); !swept) {
      return swept;
    }
    const auto& r = request.reservation;
    auto status = read_quota(m_db, r.subject, r.now, r.limit);
    auto lease = status ? live_lease(m_db, request, now) : propagate(status);
    if (!lease) {
      return propagate(lease);
    }
    if (!rules::decide_lease(request, *status, lease->has_value(), grant)) {
      return {}; // refused: nothing changes
    }
    return apply_grant(m_db, request, lease->has_value(), grant);
  });
  return done ? Result<LeaseGrant>(grant) : propagate(done);
}

Result<std::vector<std::int64_t>> SqliteStore::extend_leases(const std::vector<std::int64_t>& ids,
                                                             UnixSeconds now, UnixSeconds expires_at) {
  const std::lock_guard lock(m_mutex);
  std::vector<std::int64_t> extended;
  auto done = write(Durability::normal, [&]() -> Result<void> {
    for (const std::int64_t id : ids) {
      auto query = m_db.prepare(lease_sql::k_extend_lease);
      if (!query) {
        return propagate(query);
      }
      query->bind(1, expires_at).bind(2, id).bind(3, now);
      if (auto ran = query->run(); !ran) {
        return ran;
      }
      if (query->changes() > 0) {
        extended.push_back(id);
      }
    }
    return {};
  });
  return done ? Result<std::vector<std::int64_t>>(std::move(extended)) : propagate(done);
}

Result<void> SqliteStore::write_ledger(const std::vector<LedgerEntry>& entries) {
  const std::lock_guard lock(m_mutex);
  const auto plan = rules::plan_ledger(entries);
  return write(Durability::normal, [&]() -> Result<void> {
    auto usage = write_usage(m_db, plan);
    return usage ? write_leases(m_db, plan) : usage;
  });
}

} // namespace claudegate::store::sqlite_backend
