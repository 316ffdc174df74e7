// SPDX-License-Identifier: Apache-2.0
// Quota leases and the write-behind ledger on PostgreSQL: a lease is taken
// or grown in one transaction under its subject's advisory lock
// (lease_amounts decides), so N processes never overshoot a limit
// together; a ledger batch is written all or none, its subjects locked, in
// a fixed handful of statements whatever its size.
#include "pg_store.hpp"

#include "claudegate/base/duration.hpp"

#include <set>
#include <string>
#include <vector>

namespace claudegate::store::pg {

namespace {

namespace sql {
const std::string k_live_lease =
    "SELECT outstanding FROM quota_leases WHERE id = $1 AND subject = $2 AND day = $3 "
    "AND owner = $4 AND expires_at > $5";
const std::string k_insert_lease = "INSERT INTO quota_leases (subject, day, outstanding, expires_at, owner) "
                                   "VALUES ($1, $2, $3, $4, $5) RETURNING id";
const std::string k_grow_lease = "UPDATE quota_leases SET outstanding = outstanding + $1, "
                                 "expires_at = GREATEST(expires_at, $2) WHERE id = $3 RETURNING outstanding";
const std::string k_delete_expired = "DELETE FROM quota_leases WHERE subject = $1 AND expires_at <= $2";
const std::string k_extend_leases = "UPDATE quota_leases SET expires_at = GREATEST(expires_at, $1) "
                                    "WHERE id = ANY($2::bigint[]) AND expires_at > $3 RETURNING id";
// Spent tokens per lease as two arrays (rules::LedgerPlan sums them).
const std::string k_spend_leases =
    "UPDATE quota_leases SET outstanding = GREATEST(0, outstanding - s.tokens) "
    "FROM unnest($1::bigint[], $2::bigint[]) AS s(id, tokens) WHERE quota_leases.id = s.id";
const std::string k_close_leases = "DELETE FROM quota_leases WHERE id = ANY($1::bigint[])";
const std::string k_lease_subjects = "SELECT DISTINCT subject FROM quota_leases WHERE id = ANY($1::bigint[])";
} // namespace sql

// `ids` as a PostgreSQL array literal.
ArrayLiteral array_of(const std::vector<std::int64_t>& ids) {
  ArrayLiteral array;
  for (const std::int64_t id : ids) {
    array.add(id);
  }
  return array;
}

// The outstanding tokens of live lease `request.lease_id` (nullopt: none,
// no longer live, or not the caller's for this subject and day).
Result<std::optional<std::int64_t>> live_lease(Connection& db, const LeaseRequest& request, UnixSeconds now) {
  if (request.lease_id == 0) {
    return std::optional<std::int64_t>{};
  }
  const auto& r = request.reservation;
  auto rows = db.query(sql::k_live_lease, Params()
                                              .add(request.lease_id)
                                              .add(r.subject)
                                              .add(duration::utc_day_start(r.now))
                                              .add(r.owner)
                                              .add(now));
  if (!rows) {
    return propagate(rows);
  }
  return rows->size() > 0 ? std::optional<std::int64_t>(rows->integer(0, 0)) : std::nullopt;
}

// Grant `grant.amounts` onto the request's lease, or a new one when it is gone.
Result<void> apply_grant(Connection& db, const LeaseRequest& request, bool live, LeaseGrant& grant) {
  const auto& r = request.reservation;
  auto rows = live ? db.query(sql::k_grow_lease,
                              Params().add(grant.amounts.added).add(request.expires_at).add(request.lease_id))
                   : db.query(sql::k_insert_lease, Params()
                                                       .add(r.subject)
                                                       .add(duration::utc_day_start(r.now))
                                                       .add(grant.amounts.added)
                                                       .add(request.expires_at)
                                                       .add(r.owner));
  if (!rows) {
    return propagate(rows);
  }
  grant.lease_id = live ? request.lease_id : rows->scalar();
  grant.outstanding = live ? rows->scalar() : grant.amounts.added;
  grant.expires_at = request.expires_at;
  grant.held += grant.amounts.added;
  return {};
}

// The leases' part of a ledger batch: what each spent, which closed.
Result<void> write_leases(Connection& db, const rules::LedgerPlan& plan) {
  if (!plan.spent.empty()) {
    ArrayLiteral ids;
    ArrayLiteral tokens;
    for (const auto& [id, amount] : plan.spent) {
      ids.add(id);
      tokens.add(amount);
    }
    if (auto spent = db.query(sql::k_spend_leases, Params().add(ids).add(tokens)); !spent) {
      return propagate(spent);
    }
  }
  if (plan.closed.empty()) {
    return {};
  }
  auto closed = db.query(sql::k_close_leases, Params().add(array_of(plan.closed)));
  return closed ? Result<void>{} : propagate(closed);
}

// The subjects a ledger batch touches: its rows' and its leases'.
Result<std::set<std::string>> subjects_of(Connection& db, const rules::LedgerPlan& plan) {
  std::set<std::string> subjects;
  for (const UsageRecord* row : plan.latest_by_subject) {
    subjects.insert(row->subject);
  }
  ArrayLiteral leases;
  for (const auto& [id, tokens] : plan.spent) {
    leases.add(id);
  }
  for (const std::int64_t id : plan.closed) {
    leases.add(id);
  }
  if (plan.spent.empty() && plan.closed.empty()) {
    return subjects;
  }
  auto rows = db.query(sql::k_lease_subjects, Params().add(leases));
  if (!rows) {
    return propagate(rows);
  }
  for (int row = 0; row < rows->size(); ++row) {
    subjects.insert(rows->text(row, 0));
  }
  return subjects;
}

} // namespace

Result<LeaseGrant> PgStore::take_lease(const LeaseRequest& request, UnixSeconds now) {
  LeaseGrant grant;
  const auto& r = request.reservation;
  auto done = transaction("take a quota lease", [&](Connection& db) -> Result<void> {
    auto locked = lock_subjects(db, {r.subject});
    auto swept =
        locked ? db.query(sql::k_delete_expired, Params().add(r.subject).add(now)) : propagate(locked);
    auto status = swept ? read_quota(db, r.subject, r.now, r.limit) : propagate(swept);
    auto lease = status ? live_lease(db, request, now) : propagate(status);
    if (!lease) {
      return propagate(lease);
    }
    if (!rules::decide_lease(request, *status, lease->has_value(), grant)) {
      return {}; // refused: nothing changes
    }
    return apply_grant(db, request, lease->has_value(), grant);
  });
  return done ? Result<LeaseGrant>(grant) : propagate(done);
}

Result<std::vector<std::int64_t>> PgStore::extend_leases(const std::vector<std::int64_t>& ids,
                                                         UnixSeconds now, UnixSeconds expires_at) {
  return with_connection("extend quota leases", [&](Connection& db) -> Result<std::vector<std::int64_t>> {
    auto rows = db.query(sql::k_extend_leases, Params().add(expires_at).add(array_of(ids)).add(now));
    if (!rows) {
      return propagate(rows);
    }
    std::set<std::int64_t> extended;
    for (int row = 0; row < rows->size(); ++row) {
      extended.insert(rows->integer(row, 0));
    }
    std::vector<std::int64_t> out;
    for (const std::int64_t id : ids) {
      if (extended.contains(id)) {
        out.push_back(id);
      }
    }
    return out;
  });
}

Result<void> PgStore::write_ledger(const std::vector<LedgerEntry>& entries) {
  const auto plan = rules::plan_ledger(entries);
  return transaction("write the usage ledger", [&](Connection& db) -> Result<void> {
    auto subjects = subjects_of(db, plan);
    auto locked = subjects ? lock_subjects(db, *subjects) : propagate(subjects);
    auto usage = locked ? write_usage(db, plan) : locked;
    return usage ? write_leases(db, plan) : usage;
  });
}

} // namespace claudegate::store::pg
