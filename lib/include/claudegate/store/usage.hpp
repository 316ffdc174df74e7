// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The store's role for metering: quota reservations and leases, the usage
// ledger and its reports.
namespace claudegate::store {

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
  std::int64_t reserved = 0; // outstanding reservations and leases today
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

// ---- quota leases (DESIGN.md §3) ----------------------------------------------
// A gateway process holds part of a subject's remaining daily quota, taken
// from the store in one transaction, and reserves from it in memory
// (QuotaBook). A live lease counts against every other holder until it is
// returned or expires; a crashed process's lease counts until its expiry
// (under-serving meanwhile, never overshooting).

// How long a lease lives unless extended; QuotaBook extends its leases
// every k_lease_ttl / 6 and stops reserving from one k_lease_ttl / 6 before
// it expires.
inline constexpr std::int64_t k_lease_ttl = 30;

// Of what the store has left after a request's shortfall, a lease grows by
// one part in this many as spare, so the next requests are answered in
// memory and the rest stays for other processes.
inline constexpr std::int64_t k_lease_spare_divisor = 4;

// Grow lease `lease_id` (0, or no longer live: take a new one) so that it
// covers `reservation` (whose limit must be set; owner owns the lease).
struct LeaseRequest {
  ReservationRequest reservation;
  std::int64_t lease_id = 0;
  std::int64_t available = 0; // of that lease, tokens the process has not reserved
  UnixSeconds expires_at = 0; // the lease's expiry after this
};

// The request's reservation and the tokens the lease grows by.
struct LeaseAmounts {
  std::int64_t reservation = 0;
  std::int64_t added = 0;
};

// The one rule every backend grows a lease by. `remaining` = limit − used −
// reservations − every live lease's outstanding (this one's included),
// `available` = what the process has not reserved of its lease: the
// request gets reservation_amount over available + remaining; the lease
// grows by the shortfall (reservation − available, at least 0) plus, unless
// the request takes all that is left, a spare of (remaining − shortfall) /
// k_lease_spare_divisor. nullopt: refused (nothing changes).
std::optional<LeaseAmounts> lease_amounts(const ReservationRequest& reservation, std::int64_t available,
                                          std::int64_t remaining);

// A lease granted or grown (lease_id ≠ 0), or a refusal (lease_id = 0).
struct LeaseGrant {
  std::int64_t lease_id = 0; // differs from the request's when that one was gone
  LeaseAmounts amounts;
  std::int64_t outstanding = 0; // the lease's outstanding tokens in the store after the grant
  UnixSeconds expires_at = 0;
  // In the store after the grant or at the refusal: today's settled tokens,
  // and every token held (reservations and live leases, this one included).
  std::int64_t used = 0;
  std::int64_t held = 0;
  bool granted() const { return lease_id != 0; }
};

// One entry of the write-behind ledger (LedgerWriter), written in order: a
// settled request's row, whose tokens leave lease `lease_id`'s outstanding
// in the same transaction (0: no lease); or `tokens` of a lease given back
// unused; or a lease closed (deleted: all its tokens are in rows or back).
struct LedgerEntry {
  enum class Kind { row, give_back, close };
  Kind kind = Kind::row;
  std::int64_t lease_id = 0;
  std::int64_t tokens = 0; // give_back only
  UsageRecord row;         // row only
};

struct SubjectQuota {
  std::string subject;
  std::int64_t used_today = 0;       // settled tokens today (UTC)
  std::optional<std::int64_t> limit; // from the subject's latest ledger row; nullopt = unknown/unlimited
};

// Quota reservations and the usage ledger, one role of a Store.
class UsageStore {
public:
  virtual ~UsageStore() = default;

  // Atomically reserve tokens of today's quota as reservation_amount
  // decides against limit − used − reserved (live leases included); a refusal is a Reservation
  // with id 0 and the status that refused it. A reservation counts until it
  // is settled or release_orphaned finds its owner dead. Fails with storage.
  virtual Result<Reservation> reserve(const ReservationRequest& request) = 0;

  // Drop the reservations and leases whose owner `alive` says is dead (a
  // process that crashed before settling); the count dropped. Fails with storage.
  virtual Result<std::int64_t> release_orphaned(const std::function<bool(std::string_view owner)>& alive) = 0;

  // Settle reservation `reservation_id` (0 = none) into ledger row `usage`, atomically.
  virtual Result<void> settle(std::int64_t reservation_id, const UsageRecord& usage) = 0;

  // Grow or take a lease as lease_amounts decides, in one transaction;
  // expired leases stop counting (and are deleted). Fails with storage.
  virtual Result<LeaseGrant> take_lease(const LeaseRequest& request, UnixSeconds now) = 0;

  // Move the expiry of leases `ids` to `expires_at` where they still live at
  // `now`; the ids extended (the others expired or were released). Fails with storage.
  virtual Result<std::vector<std::int64_t>> extend_leases(const std::vector<std::int64_t>& ids,
                                                          UnixSeconds now, UnixSeconds expires_at) = 0;

  // Write `entries` in order in one transaction (all or none). Fails with storage.
  virtual Result<void> write_ledger(const std::vector<LedgerEntry>& entries) = 0;

  // Today's quota status of `subject` at `now` under `limit`.
  virtual Result<QuotaStatus> quota_status(const std::string& subject, UnixSeconds now,
                                           std::optional<std::int64_t> limit) = 0;

  // Aggregated ledger rows for `query`, ordered by the grouping keys.
  virtual Result<std::vector<UsageRow>> usage(const UsageQuery& query) = 0;

  // For every subject in the ledger: today's settled usage at `now` and the
  // limit recorded with its latest request.
  virtual Result<std::vector<SubjectQuota>> subject_quotas(UnixSeconds now) = 0;
};

} // namespace claudegate::store
