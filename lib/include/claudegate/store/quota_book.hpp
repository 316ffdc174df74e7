// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/store/ledger_writer.hpp"
#include "claudegate/store/usage.hpp"

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

// A process's quota reservations in memory (DESIGN.md §2 step 6, §3): each
// limited subject's reservations come from a lease of its daily quota that
// this book holds; the store is asked only when the lease cannot cover a
// request (take_lease: the shortfall plus a spare, lease_amounts). Settled
// usage goes to the write-behind ledger. Thread-safe; io threads call
// reserve/settle/status, the ledger's store thread calls maintain.
namespace claudegate::store {

class QuotaBook {
public:
  // Registers maintain() as `ledger`'s maintenance task. `store`, `ledger`
  // and `clock` must outlive the book; leases are owned by `owner`.
  QuotaBook(UsageStore& store, LedgerWriter& ledger, const Clock& clock,
            std::string owner = reservation_owner());
  QuotaBook(const QuotaBook&) = delete;
  QuotaBook& operator=(const QuotaBook&) = delete;
  ~QuotaBook(); // close()

  // Reserve for `request` (its owner is ignored: the book's leases are the
  // book's): from the subject's lease in memory, or after growing it (or
  // taking a new one) in the store. A refusal is a Reservation with id 0.
  // Unlimited subjects take no lease. Fails with storage when the store
  // cannot lease, or while the ledger cannot be written (nothing would be
  // metered), and with internal after close().
  Result<Reservation> reserve(const ReservationRequest& request);

  // Settle reservation `reservation_id` (0 or unknown: none) into `usage`:
  // the unspent part returns to its lease now, the row is queued on the ledger.
  void settle(std::int64_t reservation_id, const UsageRecord& usage);

  // What this process knows of `subject`'s day at `now`, in memory: used =
  // settled as of the last lease plus what this process settled since;
  // reserved = held elsewhere as of the last lease plus this process's
  // reservations in flight. Zeros before the subject's first reservation of the day.
  QuotaStatus status(const std::string& subject, UnixSeconds now, std::optional<std::int64_t> limit) const;

  // On the ledger's thread: extend the live leases (every k_lease_ttl / 6),
  // give back leases idle that long and those of past days, and drop the
  // reservations and leases of processes known dead (every k_lease_ttl).
  void maintain();

  // Return every lease (queued on the ledger after the rows of its
  // requests); reserve fails afterwards. Call before the ledger's drain().
  void close();

private:
  struct Lease {
    std::string subject;
    UnixSeconds day = 0;
    UnixSeconds expires_at = 0;
    UnixSeconds last_reserved = 0;
    std::int64_t outstanding = 0; // granted − spent − returned, as the store will have it
    std::int64_t held = 0;        // reserved by requests in flight
    bool retired = false;         // no new reservations; closed once `held` is 0
    std::int64_t available() const { return std::max<std::int64_t>(0, outstanding - held); }
  };
  struct Subject {
    UnixSeconds day = 0;
    std::int64_t lease_id = 0;  // the lease reservations come from (0: none)
    std::int64_t used = 0;      // settled today, as far as this process knows
    std::int64_t elsewhere = 0; // held outside this process's lease at the last take
    std::int64_t held = 0;      // this process's reservations in flight today
    bool taking = false;        // a reserver is growing the lease in the store
  };
  struct Held {
    std::int64_t lease_id = 0;
    std::string subject;
    UnixSeconds day = 0;
    std::int64_t amount = 0;
  };

  Subject& subject_for(const std::string& subject, UnixSeconds day);
  Lease* usable_lease(Subject& subject, UnixSeconds now);
  Result<Reservation> take(std::unique_lock<std::mutex>& lock, const ReservationRequest& request);
  Reservation hold(Subject& subject, std::int64_t lease_id, std::int64_t amount, UnixSeconds now,
                   std::optional<std::int64_t> limit);
  void apply(Subject& subject, const LeaseRequest& asked, const LeaseGrant& grant);
  void retire(std::int64_t lease_id);
  void extend(UnixSeconds now);
  QuotaStatus status_of(const Subject& subject, std::optional<std::int64_t> limit) const;

  UsageStore& m_store;
  LedgerWriter& m_ledger;
  const Clock& m_clock;
  const std::string m_owner;
  mutable std::mutex m_mutex; // never held across a store call (reserve releases it while taking)
  std::condition_variable m_taken;
  std::unordered_map<std::string, Subject> m_subjects;
  std::unordered_map<std::int64_t, Lease> m_leases;
  std::unordered_map<std::int64_t, Held> m_held;
  std::int64_t m_next_id = 1;
  UnixSeconds m_next_extend = 0;
  UnixSeconds m_next_sweep = 0;
  bool m_closed = false;
};

} // namespace claudegate::store
