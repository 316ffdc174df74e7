// SPDX-License-Identifier: Apache-2.0
#include "sqlite_store.hpp"

#include "claudegate/base/duration.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace claudegate::store::sqlite_backend {

namespace {

constexpr std::int64_t k_day_seconds = 86'400;

namespace sql {
const std::string k_used_on_day =
    "SELECT COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0) "
    "FROM usage_daily WHERE day = ? AND subject = ?";
const std::string k_reserved_since =
    "SELECT COALESCE(SUM(estimate), 0) FROM quota_reservations WHERE subject = ? AND created_at >= ?";
const std::string k_insert_reservation =
    "INSERT INTO quota_reservations (subject, created_at, estimate, owner) VALUES (?, ?, ?, ?) RETURNING id";
const std::string k_delete_reservation = "DELETE FROM quota_reservations WHERE id = ?";
const std::string k_reservation_owners =
    "SELECT owner FROM quota_reservations UNION SELECT owner FROM quota_leases";
const std::string k_delete_owned_reservations = "DELETE FROM quota_reservations WHERE owner = ?";
const std::string k_delete_owned_leases = "DELETE FROM quota_leases WHERE owner = ?";
const std::string k_insert_usage =
    "INSERT INTO usage_ledger (at, subject, jti, model, status, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, latency_ms, request_id, stream, quota_limit, estimated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const std::string k_upsert_daily =
    "INSERT INTO usage_daily (day, subject, model, requests, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, estimated_requests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (day, subject, model) DO UPDATE SET requests = usage_daily.requests + excluded.requests, "
    "input_tokens = usage_daily.input_tokens + excluded.input_tokens, "
    "output_tokens = usage_daily.output_tokens + excluded.output_tokens, "
    "cache_read_tokens = usage_daily.cache_read_tokens + excluded.cache_read_tokens, "
    "cache_write_tokens = usage_daily.cache_write_tokens + excluded.cache_write_tokens, "
    "estimated_requests = usage_daily.estimated_requests + excluded.estimated_requests";
const std::string k_upsert_subject =
    "INSERT INTO usage_subjects (subject, last_at, quota_limit) VALUES (?, ?, ?) "
    "ON CONFLICT (subject) DO UPDATE SET last_at = excluded.last_at, quota_limit = excluded.quota_limit "
    "WHERE excluded.last_at >= usage_subjects.last_at";
const std::string k_subject_quotas =
    "SELECT s.subject, s.quota_limit, (SELECT COALESCE(SUM(d.input_tokens + d.output_tokens + "
    "d.cache_read_tokens + d.cache_write_tokens), 0) FROM usage_daily d WHERE d.day = ? AND "
    "d.subject = s.subject) FROM usage_subjects s ORDER BY s.subject";
} // namespace sql

using rules::key_expression;
using rules::UsageSource;

constexpr UsageSource k_rollup{"usage_daily", "day", "day", "requests", "estimated_requests"};
constexpr UsageSource k_ledger{"usage_ledger", "(at - at % 86400)", "at", "1", "estimated"};

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& part : parts) {
    out += (out.empty() ? "" : std::string(separator)) + part;
  }
  return out;
}

std::vector<std::string> usage_filters(const UsageQuery& query, const UsageSource& source) {
  std::vector<std::string> filters;
  if (query.since) {
    filters.push_back(fmt::format("{} >= ?", source.time));
  }
  if (query.until) {
    filters.push_back(fmt::format("{} < ?", source.time));
  }
  if (query.subject) {
    filters.emplace_back("subject = ?");
  }
  if (query.model) {
    filters.emplace_back("model = ?");
  }
  return filters;
}

// The rows of `source` that `query` covers, one per rollup or ledger row:
// grouping keys, request count, token counts. Summed in C++ (UsageGroups):
// SQLite's GROUP BY sorts every row first, several times slower here.
std::string usage_sql(const UsageQuery& query, const UsageSource& source) {
  std::string keys;
  for (GroupBy key : query.group_by) {
    keys += fmt::format("{}, ", key_expression(key, source));
  }
  std::string text = fmt::format("SELECT {}{}, input_tokens, output_tokens, cache_read_tokens, "
                                 "cache_write_tokens, {} FROM {}",
                                 keys, source.requests, source.estimated, source.table);
  const auto filters = usage_filters(query, source);
  if (!filters.empty()) {
    text += " WHERE " + join(filters, " AND ");
  }
  return text;
}

void bind_usage_filters(Query& q, const UsageQuery& query) {
  int index = 0;
  for (const auto& bound : {query.since, query.until}) {
    if (bound) {
      q.bind(++index, *bound);
    }
  }
  for (const auto& text : {query.subject, query.model}) {
    if (text) {
      q.bind(++index, *text);
    }
  }
}

const std::string& group_field(const UsageRow& row, GroupBy key) {
  return key == GroupBy::sub ? row.subject : key == GroupBy::day ? row.day : row.model;
}

// -1, 0 or 1 as `a`'s grouping keys sort before, with or after `b`'s.
int compare_groups(const UsageRow& a, const UsageRow& b, const std::vector<GroupBy>& group_by) {
  for (GroupBy key : group_by) {
    if (const int order = group_field(a, key).compare(group_field(b, key)); order != 0) {
      return order < 0 ? -1 : 1;
    }
  }
  return 0;
}

// Usage rows summed by their grouping keys, in a hash map keyed by the
// keys' bytes (each length-prefixed, so no two key tuples collide).
class UsageGroups {
public:
  explicit UsageGroups(const std::vector<GroupBy>& group_by) : m_group_by(group_by) {}

  // Add the row `q` stands on (usage_sql's columns).
  void add(const Query& q) {
    m_key.clear();
    int column = 0;
    for (GroupBy key : m_group_by) {
      const std::string part = key == GroupBy::day ? std::to_string(q.integer(column)) : q.text(column);
      m_key += std::to_string(part.size()) + ':' + part;
      ++column;
    }
    auto [slot, fresh] = m_groups.try_emplace(m_key);
    if (fresh) {
      slot->second = keys_of(q);
    }
    UsageRow& row = slot->second;
    row.requests += q.integer(column);
    row.input_tokens += q.integer(column + 1);
    row.output_tokens += q.integer(column + 2);
    row.cache_read_tokens += q.integer(column + 3);
    row.cache_write_tokens += q.integer(column + 4);
    row.estimated_requests += q.integer(column + 5);
  }

  // The groups ordered by their keys (the ORDER BY Store::usage promises).
  std::vector<UsageRow> ordered() && {
    std::vector<UsageRow*> order;
    order.reserve(m_groups.size());
    for (auto& [key, row] : m_groups) {
      order.push_back(&row);
    }
    std::sort(order.begin(), order.end(), [this](const UsageRow* a, const UsageRow* b) {
      return compare_groups(*a, *b, m_group_by) < 0;
    });
    std::vector<UsageRow> rows;
    rows.reserve(order.size());
    for (UsageRow* row : order) {
      rows.push_back(std::move(*row));
    }
    return rows;
  }

private:
  UsageRow keys_of(const Query& q) {
    UsageRow row;
    int column = 0;
    for (GroupBy key : m_group_by) {
      if (key == GroupBy::sub) {
        row.subject = q.text(column);
      } else if (key == GroupBy::day) {
        row.day = day_text(q.integer(column));
      } else {
        row.model = q.text(column);
      }
      ++column;
    }
    return row;
  }
  const std::string& day_text(UnixSeconds day) {
    auto [slot, fresh] = m_days.try_emplace(day);
    if (fresh) {
      slot->second = duration::utc_day(day);
    }
    return slot->second;
  }

  const std::vector<GroupBy>& m_group_by;
  std::string m_key;
  std::unordered_map<std::string, UsageRow> m_groups;
  std::unordered_map<UnixSeconds, std::string> m_days;
};

// Add the rows of `query` read from `source` alone to `groups`.
Result<void> read_usage(Connection& db, const UsageQuery& query, const UsageSource& source,
                        UsageGroups& groups) {
  auto statement = db.prepare(usage_sql(query, source));
  if (!statement) {
    return propagate(statement);
  }
  bind_usage_filters(*statement, query);
  return statement->for_each_row([&] { groups.add(*statement); });
}

} // namespace

Result<std::int64_t> used_on_day(Connection& db, const std::string& subject, UnixSeconds now) {
  return single(db, sql::k_used_on_day,
                [&](Query& q) { q.bind(1, duration::utc_day_start(now)).bind(2, subject); });
}

// Today's settled and outstanding tokens of `subject`: every reservation
// made today counts until it is settled (or released as an orphan), every
// lease of today until it is returned or expires.
Result<QuotaStatus> read_quota(Connection& db, const std::string& subject, UnixSeconds now,
                               std::optional<std::int64_t> limit) {
  auto used = used_on_day(db, subject, now);
  if (!used) {
    return propagate(used);
  }
  const UnixSeconds counted_from = duration::utc_day_start(now);
  auto reserved =
      single(db, sql::k_reserved_since, [&](Query& q) { q.bind(1, subject).bind(2, counted_from); });
  if (!reserved) {
    return propagate(reserved);
  }
  auto leased = leased_on_day(db, subject, now);
  if (!leased) {
    return propagate(leased);
  }
  return QuotaStatus{*used, *reserved + *leased, limit, counted_from + k_day_seconds};
}

Result<std::int64_t> insert_reservation(Connection& db, const ReservationRequest& request,
                                        std::int64_t amount) {
  return single(db, sql::k_insert_reservation, [&](Query& q) {
    q.bind(1, request.subject).bind(2, request.now).bind(3, amount).bind(4, request.owner);
  });
}

namespace {

Result<void> insert_usage(Connection& db, const UsageRecord& u) {
  return run(db, sql::k_insert_usage, [&](Query& q) {
    q.bind(1, u.at).bind(2, u.subject).bind(3, u.jti).bind(4, u.model).bind(5, u.status);
    q.bind(6, u.input_tokens).bind(7, u.output_tokens).bind(8, u.cache_read_tokens);
    q.bind(9, u.cache_write_tokens).bind(10, u.latency_ms).bind(11, u.request_id);
    q.bind(12, u.stream ? 1 : 0).bind(13, u.quota_limit).bind(14, u.estimated ? 1 : 0);
  });
}

Result<void> add_to_daily(Connection& db, const rules::DailySum& d) {
  return run(db, sql::k_upsert_daily, [&](Query& q) {
    q.bind(1, d.day).bind(2, d.subject).bind(3, d.model).bind(4, d.sums.requests);
    q.bind(5, d.sums.input_tokens).bind(6, d.sums.output_tokens).bind(7, d.sums.cache_read_tokens);
    q.bind(8, d.sums.cache_write_tokens).bind(9, d.sums.estimated_requests);
  });
}

} // namespace

Result<void> write_usage(Connection& db, const rules::LedgerPlan& plan) {
  for (const UsageRecord* row : plan.rows) {
    if (auto inserted = insert_usage(db, *row); !inserted) {
      return inserted;
    }
  }
  for (const auto& sum : plan.daily) {
    if (auto added = add_to_daily(db, sum); !added) {
      return added;
    }
  }
  for (const UsageRecord* row : plan.latest_by_subject) {
    auto subject = run(db, sql::k_upsert_subject,
                       [&](Query& q) { q.bind(1, row->subject).bind(2, row->at).bind(3, row->quota_limit); });
    if (!subject) {
      return subject;
    }
  }
  return {};
}

Result<Reservation> SqliteStore::reserve(const ReservationRequest& request) {
  Reservation reservation;
  auto done = batched([&]() -> Result<void> {
    auto status = read_quota(m_db, request.subject, request.now, request.limit);
    if (!status) {
      return propagate(status);
    }
    reservation = Reservation{0, 0, *status};
    const auto amount = rules::decide_reservation(request, *status);
    if (!amount) {
      return {};
    }
    auto id = insert_reservation(m_db, request, *amount);
    if (!id) {
      return propagate(id);
    }
    reservation.id = *id;
    reservation.amount = *amount;
    reservation.status.reserved += *amount;
    return {};
  });
  return done ? Result<Reservation>(reservation) : propagate(done);
}

Result<std::int64_t> SqliteStore::release_orphaned(const std::function<bool(std::string_view owner)>& alive) {
  std::int64_t released = 0;
  auto done = batched([&]() -> Result<void> {
    auto owners = m_db.prepare(sql::k_reservation_owners);
    if (!owners) {
      return propagate(owners);
    }
    std::vector<std::string> dead;
    auto listed = owners->for_each_row([&] {
      if (std::string owner = owners->text(0); !alive(owner)) {
        dead.push_back(std::move(owner));
      }
    });
    for (const auto& owner : dead) {
      for (const auto* text : {&sql::k_delete_owned_reservations, &sql::k_delete_owned_leases}) {
        auto deleted = listed ? m_db.prepare(*text) : propagate(listed);
        listed = deleted ? deleted->bind(1, owner).run() : propagate(deleted);
        released += listed ? deleted->changes() : 0;
      }
    }
    return listed;
  });
  return done ? Result<std::int64_t>(released) : propagate(done);
}

Result<void> SqliteStore::settle(std::int64_t reservation_id, const UsageRecord& usage) {
  return batched([&]() -> Result<void> {
    if (reservation_id != 0) {
      auto deleted = run(m_db, sql::k_delete_reservation, [&](Query& q) { q.bind(1, reservation_id); });
      if (!deleted) {
        return deleted;
      }
    }
    const std::vector<LedgerEntry> settled{LedgerEntry{LedgerEntry::Kind::row, 0, 0, usage}};
    return write_usage(m_db, rules::plan_ledger(settled));
  });
}

Result<QuotaStatus> SqliteStore::quota_status(const std::string& subject, UnixSeconds now,
                                              std::optional<std::int64_t> limit) {
  const std::lock_guard lock(m_mutex);
  return read_quota(m_db, subject, now, limit);
}

Result<std::vector<UsageRow>> SqliteStore::usage(const UsageQuery& query) {
  const std::lock_guard lock(m_mutex);
  UsageGroups groups(query.group_by);
  for (const auto& span : rules::plan_usage(query)) {
    if (auto read = read_usage(m_db, span.query, span.from_rollup ? k_rollup : k_ledger, groups); !read) {
      return propagate(read);
    }
  }
  // Ungrouped, the one total row exists even over no rows (as SUM would give).
  auto rows = std::move(groups).ordered();
  if (rows.empty() && query.group_by.empty()) {
    rows.emplace_back();
  }
  return rows;
}

Result<std::vector<SubjectQuota>> SqliteStore::subject_quotas(UnixSeconds now) {
  const std::lock_guard lock(m_mutex);
  auto query = m_db.prepare(sql::k_subject_quotas);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, duration::utc_day_start(now));
  return query->collect<SubjectQuota>([](const Query& row) {
    return SubjectQuota{row.text(0), row.integer(2), row.optional_integer(1)};
  });
}

} // namespace claudegate::store::sqlite_backend
