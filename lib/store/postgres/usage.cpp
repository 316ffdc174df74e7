// SPDX-License-Identifier: Apache-2.0
// Metering on PostgreSQL: reservations decided by reservation_amount under
// a per-subject advisory lock (N processes never overshoot a limit
// together), the ledger with its daily rollup, and reports.
#include "pg_store.hpp"

#include "claudegate/base/duration.hpp"

#include <fmt/format.h>

#include <array>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace claudegate::store::pg {

namespace {

constexpr std::int64_t k_day_seconds = 86'400;

namespace sql {
// Two-key advisory locks (class 2: quotas) never meet the migration's one-key lock.
const std::string k_lock_subject = "SELECT pg_advisory_xact_lock(2, hashtext($1))";
// Settled, reserved and leased (live at $3) tokens of subject $1 on the day starting $2, in one snapshot.
const std::string k_quota =
    "SELECT (SELECT COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0) "
    "FROM usage_daily WHERE day = $2 AND subject = $1), "
    "(SELECT COALESCE(SUM(estimate), 0) FROM quota_reservations WHERE subject = $1 AND created_at >= $2), "
    "(SELECT COALESCE(SUM(outstanding), 0) FROM quota_leases WHERE subject = $1 AND day = $2 "
    "AND expires_at > $3)";
const std::string k_insert_reservation =
    "INSERT INTO quota_reservations (subject, created_at, estimate, owner) "
    "VALUES ($1, $2, $3, $4) RETURNING id";
const std::string k_delete_reservation = "DELETE FROM quota_reservations WHERE id = $1";
const std::string k_reservation_owners =
    "SELECT owner FROM quota_reservations UNION SELECT owner FROM quota_leases";
const std::string k_delete_owned = "WITH r AS (DELETE FROM quota_reservations WHERE owner = $1 RETURNING 1), "
                                   "l AS (DELETE FROM quota_leases WHERE owner = $1 RETURNING 1) "
                                   "SELECT (SELECT COUNT(*) FROM r) + (SELECT COUNT(*) FROM l)";
// The ledger, daily and per-subject statements take a batch as arrays, one per column.
const std::string k_insert_usage =
    "INSERT INTO usage_ledger (at, subject, jti, model, status, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, latency_ms, request_id, stream, quota_limit, estimated) "
    "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], "
    "$7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], $12::bigint[], $13::bigint[], "
    "$14::bigint[])";
const std::string k_upsert_daily =
    "INSERT INTO usage_daily (day, subject, model, requests, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, estimated_requests) SELECT * FROM unnest($1::bigint[], "
    "$2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], "
    "$9::bigint[]) "
    "ON CONFLICT (day, subject, model) DO UPDATE SET requests = usage_daily.requests + excluded.requests, "
    "input_tokens = usage_daily.input_tokens + excluded.input_tokens, "
    "output_tokens = usage_daily.output_tokens + excluded.output_tokens, "
    "cache_read_tokens = usage_daily.cache_read_tokens + excluded.cache_read_tokens, "
    "cache_write_tokens = usage_daily.cache_write_tokens + excluded.cache_write_tokens, "
    "estimated_requests = usage_daily.estimated_requests + excluded.estimated_requests";
const std::string k_upsert_subject =
    "INSERT INTO usage_subjects (subject, last_at, quota_limit) "
    "SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) "
    "ON CONFLICT (subject) DO UPDATE SET last_at = excluded.last_at, quota_limit = excluded.quota_limit "
    "WHERE excluded.last_at >= usage_subjects.last_at";
const std::string k_subject_quotas =
    "SELECT s.subject, s.quota_limit, (SELECT COALESCE(SUM(d.input_tokens + d.output_tokens + "
    "d.cache_read_tokens + d.cache_write_tokens), 0) FROM usage_daily d WHERE d.day = $1 AND "
    "d.subject = s.subject) FROM usage_subjects s ORDER BY s.subject COLLATE \"C\"";
} // namespace sql

using rules::key_expression;
using rules::UsageSource;

constexpr UsageSource k_rollup{"usage_daily", "day", "day", "SUM(requests)", "SUM(estimated_requests)"};
constexpr UsageSource k_ledger{"usage_ledger", "(at - at % 86400)", "at", "COUNT(*)", "SUM(estimated)"};

// `query`'s sums over `source`, grouped by its keys in SQL; the filters as $n.
std::pair<std::string, Params> usage_sql(const UsageQuery& query, const UsageSource& source) {
  std::vector<std::string> keys;
  for (GroupBy key : query.group_by) {
    keys.emplace_back(key_expression(key, source));
  }
  Params params;
  std::string filters;
  const auto filter = [&](std::string_view column, std::string_view op, const auto& value) {
    params.add(value);
    filters +=
        fmt::format("{}{} {} ${}", filters.empty() ? " WHERE " : " AND ", column, op, params.values().size());
  };
  if (query.since) {
    filter(source.time, ">=", *query.since);
  }
  if (query.until) {
    filter(source.time, "<", *query.until);
  }
  if (query.subject) {
    filter("subject", "=", *query.subject);
  }
  if (query.model) {
    filter("model", "=", *query.model);
  }
  const std::string key_list = fmt::format("{}", fmt::join(keys, ", "));
  std::string text = fmt::format(
      "SELECT {}{}{}::bigint, SUM(input_tokens)::bigint, SUM(output_tokens)::bigint, "
      "SUM(cache_read_tokens)::bigint, SUM(cache_write_tokens)::bigint, {}::bigint FROM {}{}",
      key_list, keys.empty() ? "" : ", ", source.requests, source.estimated, source.table, filters);
  if (!keys.empty()) {
    text += " GROUP BY " + key_list;
  }
  return {std::move(text), std::move(params)};
}

// The groups of every span, merged by key and ordered as the keys sort (bytewise).
using UsageGroups = std::map<std::vector<std::string>, UsageRow>;

void add_groups(const Rows& rows, const std::vector<GroupBy>& group_by, UsageGroups& groups) {
  const int keys = static_cast<int>(group_by.size());
  for (int r = 0; r < rows.size(); ++r) {
    if (keys == 0 && rows.is_null(r, 1)) {
      continue; // SUM over no rows
    }
    std::vector<std::string> key;
    UsageRow fresh;
    for (int k = 0; k < keys; ++k) {
      const GroupBy by = group_by[static_cast<std::size_t>(k)];
      key.push_back(by == GroupBy::day ? duration::utc_day(rows.integer(r, k)) : rows.text(r, k));
      (by == GroupBy::sub ? fresh.subject : by == GroupBy::day ? fresh.day : fresh.model) = key.back();
    }
    auto [slot, inserted] = groups.try_emplace(std::move(key), std::move(fresh));
    UsageRow& row = slot->second;
    row.requests += rows.integer(r, keys);
    row.input_tokens += rows.integer(r, keys + 1);
    row.output_tokens += rows.integer(r, keys + 2);
    row.cache_read_tokens += rows.integer(r, keys + 3);
    row.cache_write_tokens += rows.integer(r, keys + 4);
    row.estimated_requests += rows.integer(r, keys + 5);
  }
}

} // namespace

Result<void> lock_subjects(Connection& db, const std::set<std::string>& subjects) {
  for (const auto& subject : subjects) {
    if (auto locked = db.query(sql::k_lock_subject, Params().add(subject)); !locked) {
      return propagate(locked);
    }
  }
  return {};
}

// Every reservation made today counts until settled (or released as an
// orphan), every lease of today until it is returned or expires.
Result<QuotaStatus> read_quota(Connection& db, const std::string& subject, UnixSeconds now,
                               std::optional<std::int64_t> limit) {
  const UnixSeconds day = duration::utc_day_start(now);
  auto rows = db.query(sql::k_quota, Params().add(subject).add(day).add(now));
  if (!rows) {
    return propagate(rows);
  }
  return QuotaStatus{rows->integer(0, 0), rows->integer(0, 1) + rows->integer(0, 2), limit,
                     day + k_day_seconds};
}

// The ledger columns of `rows`, one array each, in k_insert_usage's order.
Params ledger_columns(const std::vector<const UsageRecord*>& rows) {
  std::array<ArrayLiteral, 14> c;
  for (const UsageRecord* u : rows) {
    c[0].add(u->at);
    c[1].add(u->subject);
    c[2].add(u->jti);
    c[3].add(u->model);
    c[4].add(u->status);
    c[5].add(u->input_tokens);
    c[6].add(u->output_tokens);
    c[7].add(u->cache_read_tokens);
    c[8].add(u->cache_write_tokens);
    c[9].add(u->latency_ms);
    c[10].add(u->request_id);
    c[11].add(u->stream ? 1 : 0);
    c[12].add(u->quota_limit);
    c[13].add(u->estimated ? 1 : 0);
  }
  return Params::of(c);
}

// The daily sums of a batch, as k_upsert_daily's arrays.
Params daily_columns(const std::vector<rules::DailySum>& daily) {
  std::array<ArrayLiteral, 9> c;
  for (const auto& d : daily) {
    c[0].add(d.day);
    c[1].add(d.subject);
    c[2].add(d.model);
    c[3].add(d.sums.requests);
    c[4].add(d.sums.input_tokens);
    c[5].add(d.sums.output_tokens);
    c[6].add(d.sums.cache_read_tokens);
    c[7].add(d.sums.cache_write_tokens);
    c[8].add(d.sums.estimated_requests);
  }
  return Params::of(c);
}

// Each subject's latest row of a batch, as k_upsert_subject's arrays.
Params subject_columns(const std::vector<const UsageRecord*>& latest) {
  ArrayLiteral subjects;
  ArrayLiteral times;
  ArrayLiteral limits;
  for (const UsageRecord* u : latest) {
    subjects.add(u->subject);
    times.add(u->at);
    limits.add(u->quota_limit);
  }
  return Params().add(subjects).add(times).add(limits);
}

Result<void> write_usage(Connection& db, const rules::LedgerPlan& plan) {
  if (plan.rows.empty()) {
    return {};
  }
  auto inserted = db.query(sql::k_insert_usage, ledger_columns(plan.rows));
  auto daily = inserted ? db.query(sql::k_upsert_daily, daily_columns(plan.daily)) : inserted;
  auto subject = daily ? db.query(sql::k_upsert_subject, subject_columns(plan.latest_by_subject)) : daily;
  return subject ? Result<void>{} : propagate(subject);
}

Result<Reservation> PgStore::reserve(const ReservationRequest& request) {
  Reservation reservation;
  auto done = transaction("reserve quota", [&](Connection& db) -> Result<void> {
    auto locked = lock_subjects(db, {request.subject});
    auto status = locked ? read_quota(db, request.subject, request.now, request.limit) : propagate(locked);
    if (!status) {
      return propagate(status);
    }
    reservation = Reservation{0, 0, *status};
    const auto amount = rules::decide_reservation(request, *status);
    if (!amount) {
      return {};
    }
    auto id = db.query(sql::k_insert_reservation,
                       Params().add(request.subject).add(request.now).add(*amount).add(request.owner));
    if (!id) {
      return propagate(id);
    }
    reservation.id = id->scalar();
    reservation.amount = *amount;
    reservation.status.reserved += *amount;
    return {};
  });
  return done ? Result<Reservation>(reservation) : propagate(done);
}

Result<std::int64_t> PgStore::release_orphaned(const std::function<bool(std::string_view owner)>& alive) {
  std::int64_t released = 0;
  auto done = transaction("release orphaned reservations", [&](Connection& db) -> Result<void> {
    auto owners = db.query(sql::k_reservation_owners);
    if (!owners) {
      return propagate(owners);
    }
    for (int row = 0; row < owners->size(); ++row) {
      if (const std::string owner = owners->text(row, 0); !alive(owner)) {
        auto deleted = db.query(sql::k_delete_owned, Params().add(owner));
        if (!deleted) {
          return propagate(deleted);
        }
        released += deleted->scalar();
      }
    }
    return {};
  });
  return done ? Result<std::int64_t>(released) : propagate(done);
}

Result<void> PgStore::settle(std::int64_t reservation_id, const UsageRecord& usage) {
  return transaction("settle usage", [&](Connection& db) -> Result<void> {
    if (auto locked = lock_subjects(db, {usage.subject}); !locked) {
      return locked;
    }
    if (reservation_id != 0) {
      if (auto deleted = db.query(sql::k_delete_reservation, Params().add(reservation_id)); !deleted) {
        return propagate(deleted);
      }
    }
    const std::vector<LedgerEntry> settled{LedgerEntry{LedgerEntry::Kind::row, 0, 0, usage}};
    return write_usage(db, rules::plan_ledger(settled));
  });
}

Result<QuotaStatus> PgStore::quota_status(const std::string& subject, UnixSeconds now,
                                          std::optional<std::int64_t> limit) {
  return with_connection("read quota status",
                         [&](Connection& db) { return read_quota(db, subject, now, limit); });
}

Result<std::vector<UsageRow>> PgStore::usage(const UsageQuery& query) {
  return with_connection("report usage", [&](Connection& db) -> Result<std::vector<UsageRow>> {
    UsageGroups groups;
    for (const auto& span : rules::plan_usage(query)) {
      auto [text, params] = usage_sql(span.query, span.from_rollup ? k_rollup : k_ledger);
      auto rows = db.query(text, params);
      if (!rows) {
        return propagate(rows);
      }
      add_groups(*rows, query.group_by, groups);
    }
    std::vector<UsageRow> out;
    for (auto& [key, row] : groups) {
      out.push_back(std::move(row));
    }
    // Ungrouped, the one total row exists even over no rows.
    if (out.empty() && query.group_by.empty()) {
      out.emplace_back();
    }
    return out;
  });
}

Result<std::vector<SubjectQuota>> PgStore::subject_quotas(UnixSeconds now) {
  return with_connection("read subject quotas", [&](Connection& db) -> Result<std::vector<SubjectQuota>> {
    auto rows = db.query(sql::k_subject_quotas, Params().add(duration::utc_day_start(now)));
    if (!rows) {
      return propagate(rows);
    }
    std::vector<SubjectQuota> out;
    for (int row = 0; row < rows->size(); ++row) {
      out.push_back(SubjectQuota{rows->text(row, 0), rows->integer(row, 2), rows->optional_integer(row, 1)});
    }
    return out;
  });
}

} // namespace claudegate::store::pg
