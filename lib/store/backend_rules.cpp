// SPDX-License-Identifier: Apache-2.0
#include "backend_rules.hpp"

#include "claudegate/base/duration.hpp"

#include <fmt/core.h>

#include <map>
#include <tuple>

namespace claudegate::store::rules {

namespace {
constexpr std::int64_t k_day_seconds = 86'400;

UsageSpan span_of(const UsageQuery& query, std::optional<UnixSeconds> since, std::optional<UnixSeconds> until,
                  bool from_rollup) {
  UsageQuery part = query;
  part.since = since;
  part.until = until;
  return {std::move(part), from_rollup};
}
} // namespace

Error subject_cut_off(const PresentedToken& token) {
  return {Errc::revoked,
          fmt::format("refresh family {} was revoked: subject {} was revoked at {} (every token and refresh "
                      "family begun by then); issue a new refresh token if access should resume",
                      token.family_id, token.subject, duration::format_time(*token.subject_cutoff))};
}

Result<void> check_presentable(const PresentedToken& token, UnixSeconds now) {
  if (token.family_revoked) {
    return fail(Errc::revoked, fmt::format("refresh family {} is revoked", token.family_id));
  }
  if (token.state != "active") {
    return fail(
        Errc::refresh_reuse,
        fmt::format("refresh token reuse detected (generation {} was already used): family {} and every "
                    "access token issued from it are revoked; sign in again",
                    token.generation, token.family_id));
  }
  if (token.subject_cutoff) {
    return std::unexpected(subject_cut_off(token));
  }
  if (now >= token.family_expires_at) {
    return fail(Errc::expired,
                fmt::format("refresh family {} expired at {} ({}s ago); sign in again", token.family_id,
                            token.family_expires_at, now - token.family_expires_at));
  }
  if (now >= token.expires_at) {
    return fail(Errc::expired, fmt::format("refresh token expired at {} ({}s ago); sign in again",
                                           token.expires_at, now - token.expires_at));
  }
  return {};
}

RevocationKind revocation_kind_from_name(const std::string& name) {
  if (name == "subject") {
    return RevocationKind::subject;
  }
  return name == "family" ? RevocationKind::family : RevocationKind::jti;
}

const std::string& revocation_key(const TokenIdentity& token, RevocationKind kind) {
  if (kind == RevocationKind::subject) {
    return token.subject;
  }
  return kind == RevocationKind::family ? *token.family_id : token.jti;
}

std::string_view key_expression(GroupBy key, const UsageSource& source) {
  switch (key) {
  case GroupBy::sub:
    return "subject";
  case GroupBy::day:
    return source.day;
  case GroupBy::model:
    return "model";
  }
  return "subject";
}

std::vector<UsageSpan> plan_usage(const UsageQuery& query) {
  const auto first_whole =
      query.since.transform([](UnixSeconds t) { return duration::utc_day_start(t + k_day_seconds - 1); });
  const auto last_whole = query.until.transform([](UnixSeconds t) { return duration::utc_day_start(t); });
  if (first_whole && last_whole && *first_whole >= *last_whole) {
    return {span_of(query, query.since, query.until, false)};
  }
  std::vector<UsageSpan> spans{span_of(query, first_whole, last_whole, true)};
  if (query.since && *query.since != *first_whole) {
    spans.push_back(span_of(query, query.since, first_whole, false));
  }
  if (query.until && *query.until != *last_whole) {
    spans.push_back(span_of(query, last_whole, query.until, false));
  }
  return spans;
}

std::optional<std::int64_t> decide_reservation(const ReservationRequest& request, const QuotaStatus& status) {
  const auto remaining =
      request.limit.transform([&](std::int64_t limit) { return limit - status.used - status.reserved; });
  return reservation_amount(request, remaining);
}

bool decide_lease(const LeaseRequest& request, const QuotaStatus& status, bool lease_live,
                  LeaseGrant& grant) {
  const auto& r = request.reservation;
  grant.used = status.used;
  grant.held = status.reserved;
  const std::int64_t remaining = r.limit.value_or(0) - status.used - status.reserved;
  const auto amounts = lease_amounts(r, lease_live ? request.available : 0, remaining);
  if (!amounts) {
    return false;
  }
  grant.amounts = *amounts;
  return true;
}

namespace {

void add_to(UsageRow& sums, const UsageRecord& row) {
  sums.requests += 1;
  sums.input_tokens += row.input_tokens;
  sums.output_tokens += row.output_tokens;
  sums.cache_read_tokens += row.cache_read_tokens;
  sums.cache_write_tokens += row.cache_write_tokens;
  sums.estimated_requests += row.estimated ? 1 : 0;
}

} // namespace

LedgerPlan plan_ledger(const std::vector<LedgerEntry>& entries) {
  LedgerPlan plan;
  std::map<std::tuple<UnixSeconds, std::string_view, std::string_view>, UsageRow> daily;
  std::map<std::string_view, const UsageRecord*> latest;
  std::map<std::int64_t, std::int64_t> spent;
  for (const auto& entry : entries) {
    if (entry.kind == LedgerEntry::Kind::close) {
      plan.closed.push_back(entry.lease_id);
      continue;
    }
    if (entry.kind == LedgerEntry::Kind::give_back) {
      spent[entry.lease_id] += entry.tokens;
      continue;
    }
    const UsageRecord& row = entry.row;
    plan.rows.push_back(&row);
    add_to(daily[{duration::utc_day_start(row.at), row.subject, row.model}], row);
    const UsageRecord*& seen = latest[row.subject];
    if (seen == nullptr || row.at >= seen->at) {
      seen = &row;
    }
    if (entry.lease_id != 0) {
      spent[entry.lease_id] += row.total_tokens();
    }
  }
  for (const auto& [key, sums] : daily) {
    plan.daily.push_back(
        DailySum{std::get<0>(key), std::string(std::get<1>(key)), std::string(std::get<2>(key)), sums});
  }
  for (const auto& [subject, row] : latest) {
    plan.latest_by_subject.push_back(row);
  }
  plan.spent.assign(spent.begin(), spent.end());
  return plan;
}

} // namespace claudegate::store::rules
