// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"
#include "claudegate/store/api_keys.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// The persistent state of a gateway: refresh-token families, revocations,
// the usage ledger, quota reservations and audit events. An interface, so a
// PostgreSQL backend can serve several gateway replicas; SQLite is the
// embedded implementation (open_sqlite, claudegate/store/sqlite.hpp).
namespace claudegate::store {

// ---- refresh-token families -------------------------------------------------

struct NewFamily {
  std::string family_id; // random, base64url
  std::string subject;
  json::Json grant; // what each rotation re-issues (AccessTokenRequest as JSON)
  UnixSeconds created_at = 0;
  UnixSeconds expires_at = 0; // absolute family lifetime (family_ttl)
  std::string token_hash;     // SHA-256 of the first refresh token (base64url)
  UnixSeconds token_expires_at = 0;
};

struct Rotation {
  std::string presented_hash; // SHA-256 of the presented refresh token
  std::string new_hash;       // SHA-256 of its successor
  UnixSeconds now = 0;
  std::int64_t refresh_ttl = 0; // successor lifetime, capped by the family's expiry
};

struct RotatedFamily {
  std::string family_id;
  std::string subject;
  json::Json grant;
  int generation = 0;               // of the successor token (the first is 0)
  UnixSeconds token_expires_at = 0; // of the successor token
};

// Called inside the rotation transaction once the successor is recorded; a
// failure (say, signing the access token) rolls the rotation back.
using MintFn = std::function<Result<void>(const RotatedFamily&)>;

// ---- revocation -------------------------------------------------------------

enum class RevocationKind { jti, subject, family };

std::string_view revocation_kind_name(RevocationKind kind);

struct Revocation {
  RevocationKind kind = RevocationKind::jti;
  std::string key; // the jti, subject or family id
  std::string reason;
  UnixSeconds revoked_at = 0;
  std::optional<UnixSeconds> expires_at; // jti: the token's exp, for pruning
};

// What of a verified token the revocation check looks at.
struct TokenIdentity {
  std::string jti;
  std::string subject;
  UnixSeconds issued_at = 0;
  std::optional<std::string> family_id;
};

// ---- usage ------------------------------------------------------------------

struct UsageRecord {
  UnixSeconds at = 0;
  std::string subject;
  std::string jti;
  std::string model;
  int status = 0;
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int64_t cache_read_tokens = 0;
  std::int64_t cache_write_tokens = 0;
  std::int64_t latency_ms = 0;
  std::string request_id;
  bool stream = false;
  std::optional<std::int64_t> quota_limit; // the daily limit in force for this request
  // The counts are the gateway's conservative estimate, not the API's own
  // report (the stream was cut, or a 200 carried no readable usage).
  bool estimated = false;

  std::int64_t total_tokens() const {
    return input_tokens + output_tokens + cache_read_tokens + cache_write_tokens;
  }
};

enum class GroupBy { sub, day, model };

struct UsageQuery {
  std::optional<UnixSeconds> since; // inclusive
  std::optional<UnixSeconds> until; // exclusive
  std::optional<std::string> subject;
  std::optional<std::string> model;
  std::vector<GroupBy> group_by; // empty = one total row
};

struct UsageRow {
  std::string subject; // set when grouped by sub
  std::string day;     // YYYY-MM-DD (UTC) when grouped by day
  std::string model;   // when grouped by model
  std::int64_t requests = 0;
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int64_t cache_read_tokens = 0;
  std::int64_t cache_write_tokens = 0;
  std::int64_t estimated_requests = 0; // of `requests`, those whose counts are estimates
  std::int64_t total_tokens() const {
    return input_tokens + output_tokens + cache_read_tokens + cache_write_tokens;
  }
};

struct ReservationRequest {
  std::string subject;
  UnixSeconds now = 0;
  std::int64_t wanted = 0;  // input estimate + max_tokens (saturated)
  std::int64_t minimum = 0; // the least the request can go ahead with (≤ wanted)
  // The input cannot be bounded from the body (a document by URL, a server
  // tool): reserve all that is left today, at most `ceiling` when set.
  bool take_remaining = false;
  std::optional<std::int64_t> ceiling;
  std::optional<std::int64_t> limit; // nullopt = unlimited
  std::string owner;                 // the reserving process, reservation_owner()
};

struct QuotaStatus {
  std::int64_t used = 0;     // settled today (UTC)
  std::int64_t reserved = 0; // outstanding reservations today
  std::optional<std::int64_t> limit;
  UnixSeconds resets_at = 0; // next UTC midnight
};

// A reservation granted (id ≠ 0) or refused (id = 0).
struct Reservation {
  std::int64_t id = 0;
  std::int64_t amount = 0; // tokens held until settled
  QuotaStatus status;      // after this reservation, or at the refusal
  bool granted() const { return id != 0; }
};

// How many tokens `request` may hold when `remaining` are left of today's
// quota (nullopt: no limit): `wanted`, or under take_remaining what is left
// (up to `ceiling`), never more than is left; nullopt (refused) when that
// is less than `minimum`. Every backend decides with this one rule.
std::optional<std::int64_t> reservation_amount(const ReservationRequest& request,
                                               std::optional<std::int64_t> remaining);

// The identity of this process as a reservation owner: host, boot, pid and
// the pid's start time, so a reused pid is not taken for its predecessor.
std::string reservation_owner();

// False only when `owner` (from reservation_owner) is known dead: a process
// of this host (same boot) that no longer runs, or this host before a
// reboot. Owners on other hosts are presumed alive.
bool owner_may_be_alive(std::string_view owner);

struct SubjectQuota {
  std::string subject;
  std::int64_t used_today = 0;       // settled tokens today (UTC)
  std::optional<std::int64_t> limit; // from the subject's latest ledger row; nullopt = unknown/unlimited
};

struct AuditEvent {
  UnixSeconds at = 0;
  std::string kind; // "refresh_reuse", "revoke", "family_revoked", …
  std::string subject;
  std::string detail; // JSON text; never a token or key
};

// ---- the interface ----------------------------------------------------------

class Store : public ApiKeyStore {
public:
  ~Store() override = default;

  // Create a family with its first refresh token. Fails with storage.
  virtual Result<void> create_family(const NewFamily& family) = 0;

  // Exchange the presented refresh token for its successor, single use, in
  // one transaction; `mint` runs before commit. Fails with claim_mismatch
  // (unknown token), expired (token or family past its expiry; family left
  // untouched), revoked (family revoked, or its subject cut off by
  // revoke_subject at or after the family began), refresh_reuse (token already used:
  // the family is revoked and audited before returning), or storage.
  virtual Result<RotatedFamily> rotate(const Rotation& rotation, const MintFn& mint) = 0;

  // The family id of refresh token hash `token_hash`, if known.
  virtual Result<std::optional<std::string>> family_of(const std::string& token_hash) = 0;

  // Revoke family `family_id` (idempotent). Fails with claim_mismatch when unknown.
  virtual Result<void> revoke_family(const std::string& family_id, const std::string& reason,
                                     UnixSeconds now) = 0;

  // Deny-list `jti` until `expires_at` (idempotent).
  virtual Result<void> revoke_jti(const std::string& jti, std::optional<UnixSeconds> expires_at,
                                  const std::string& subject, const std::string& reason, UnixSeconds now) = 0;

  // Revoke every token of `subject` issued at or before `cutoff`, and stop
  // its refresh families begun by then (rotate fails with revoked).
  // Idempotent; keeps the latest cut-off. Gives the number of live families
  // (at `now`) this call stopped that no earlier cut-off had. Fails with storage.
  virtual Result<std::int64_t> revoke_subject(const std::string& subject, UnixSeconds cutoff,
                                              const std::string& reason, UnixSeconds now) = 0;

  // The revocation that applies to `token`, if any: jti deny-list, subject
  // cut-off (iat ≤ cut-off) or revoked family. Never confuses "not revoked"
  // with a database failure (storage).
  virtual Result<std::optional<Revocation>> find_revocation(const TokenIdentity& token) = 0;

  // A number that changes whenever a revocation is written (by any process):
  // results of find_revocation stay true while it stays the same. Fails with storage.
  virtual Result<std::int64_t> revocation_epoch() = 0;

  // Every revocation, newest first.
  virtual Result<std::vector<Revocation>> list_revocations() = 0;

  // Drop deny-list rows whose tokens expired before now − leeway; the count removed.
  virtual Result<std::int64_t> prune(UnixSeconds now, std::int64_t leeway) = 0;

  // Atomically reserve tokens of today's quota as reservation_amount
  // decides against limit − used − reserved; a refusal is a Reservation
  // with id 0 and the status that refused it. A reservation counts until it
  // is settled or release_orphaned finds its owner dead. Fails with storage.
  virtual Result<Reservation> reserve(const ReservationRequest& request) = 0;

  // Drop the reservations whose owner `alive` says is dead (a process that
  // crashed before settling); the count dropped. Fails with storage.
  virtual Result<std::int64_t> release_orphaned(const std::function<bool(std::string_view owner)>& alive) = 0;

  // Settle reservation `reservation_id` (0 = none) into ledger row `usage`, atomically.
  virtual Result<void> settle(std::int64_t reservation_id, const UsageRecord& usage) = 0;

  // Today's quota status of `subject` at `now` under `limit`.
  virtual Result<QuotaStatus> quota_status(const std::string& subject, UnixSeconds now,
                                           std::optional<std::int64_t> limit) = 0;

  // Aggregated ledger rows for `query`, ordered by the grouping keys.
  virtual Result<std::vector<UsageRow>> usage(const UsageQuery& query) = 0;

  // For every subject in the ledger: today's settled usage at `now` and the
  // limit recorded with its latest request.
  virtual Result<std::vector<SubjectQuota>> subject_quotas(UnixSeconds now) = 0;

  // Append `event` to the audit log.
  virtual Result<void> audit(const AuditEvent& event) = 0;
};

} // namespace claudegate::store
