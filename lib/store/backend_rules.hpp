// SPDX-License-Identifier: Apache-2.0
// What every store backend decides the same way, whatever its SQL: when a
// presented refresh token may be exchanged, which key a revocation names,
// how a usage query splits between the daily rollup and the raw ledger,
// how a lease grant follows from the quota read in its transaction, and
// what a ledger batch writes.
// Internal to lib/store/ (sqlite/ and postgres/ call it).
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/store/revocations.hpp"
#include "claudegate/store/usage.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace claudegate::store::rules {

// A refresh token as rotate() reads it, with its family.
struct PresentedToken {
  std::string family_id;
  int generation = 0;
  std::string state; // active, used or revoked
  UnixSeconds expires_at = 0;
  std::string subject;
  std::string grant_json;
  UnixSeconds family_expires_at = 0;
  bool family_revoked = false;
  std::optional<UnixSeconds> subject_cutoff = std::nullopt; // a revoke --sub covering the family
};

// Why `token`'s family is stopped by its subject's cut-off (revoke --sub).
Error subject_cut_off(const PresentedToken& token);

// Why `token` cannot be exchanged at `now`, if it cannot: its family
// revoked, then reuse (a used token presented again is an attack whatever
// its age, and is still punished and audited), then the subject's cut-off,
// then the family's and the token's expiry.
Result<void> check_presentable(const PresentedToken& token, UnixSeconds now);

// The kind a listing's kind column names ("jti", "subject", "family").
RevocationKind revocation_kind_from_name(const std::string& name);

// The key a revocation of `kind` names for `token` (kind family: its family id, which it has).
const std::string& revocation_key(const TokenIdentity& token, RevocationKind kind);

// Where a usage span is read, as a backend's SQL expressions: the daily
// rollup (whole UTC days) or the raw ledger (partial days).
struct UsageSource {
  std::string_view table;
  std::string_view day;  // expression for the UTC day start
  std::string_view time; // column compared with since/until
  std::string_view requests;
  std::string_view estimated; // of those requests, the ones charged an estimate
};

// The SQL expression `source` groups by for `key`.
std::string_view key_expression(GroupBy key, const UsageSource& source);

// One part of a usage query: `query` restricted to [since, until), summed
// from the daily rollup (whole UTC days) or from the raw ledger.
struct UsageSpan {
  UsageQuery query;
  bool from_rollup = false;
};

// Whole UTC days from the rollup; the partial days at either end of
// [since, until) from the ledger.
std::vector<UsageSpan> plan_usage(const UsageQuery& query);

// What reserve() grants once today's quota `status` is read in its
// transaction: reservation_amount against limit − used − reserved
// (nullopt: refused, nothing to write).
std::optional<std::int64_t> decide_reservation(const ReservationRequest& request, const QuotaStatus& status);

// The lease decision of take_lease, once today's quota `status` (leases
// included) is read in the transaction and the request's lease found live
// or not: `grant` gets used/held and, unless refused, its amounts. True
// when the store must apply the grant; false: refused, nothing to write.
bool decide_lease(const LeaseRequest& request, const QuotaStatus& status, bool lease_live, LeaseGrant& grant);

// The sums of a ledger batch's rows of one (UTC day, subject, model): their
// share of the daily rollup.
struct DailySum {
  UnixSeconds day = 0;
  std::string subject;
  std::string model;
  UsageRow sums; // requests, tokens and estimated_requests (the key fields unset)
};

// A ledger batch as both backends write it, set-wise in one transaction:
// the rows in order; their sums per (day, subject, model); each subject's
// latest row (the last of equal times: its quota limit becomes the
// subject's); the tokens each lease spent, rows and give-backs together
// (clamping the sum at 0 is clamping each spend, and spending on a lease
// the batch also closes changes nothing); and the leases closed.
struct LedgerPlan {
  std::vector<const UsageRecord*> rows;
  std::vector<DailySum> daily;
  std::vector<const UsageRecord*> latest_by_subject;
  std::vector<std::pair<std::int64_t, std::int64_t>> spent; // lease id, tokens
  std::vector<std::int64_t> closed;
};

// The plan of `entries`; it points into them, so they must outlive it.
LedgerPlan plan_ledger(const std::vector<LedgerEntry>& entries);

} // namespace claudegate::store::rules
