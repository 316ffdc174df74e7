// SPDX-License-Identifier: Apache-2.0
// Reservations from leases in memory. The mutex guards the maps only: a
// reserver that must grow a lease marks its subject `taking`, moves the
// lease's available tokens into its own hold (so nobody spends them twice)
// and calls the store unlocked; other reservers of that subject that the
// lease cannot cover wait for it, everyone else goes on.
#include "claudegate/store/quota_book.hpp"

#include "claudegate/base/duration.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace claudegate::store {

namespace {

constexpr std::int64_t k_book_day = 86'400;
constexpr std::int64_t k_extend_every =
    k_lease_ttl / 6; // also the margin before expiry a lease stops serving
constexpr std::int64_t k_idle_return = k_lease_ttl / 3;

// What `request` holds when its lease can cover it: wanted, or under
// take_remaining the ceiling (unbounded: never covered, the store decides).
std::int64_t covered_amount(const ReservationRequest& request) {
  if (!request.take_remaining) {
    return request.wanted;
  }
  return std::max(request.ceiling.value_or(std::numeric_limits<std::int64_t>::max()), request.minimum);
}

} // namespace

QuotaBook::QuotaBook(UsageStore& store, LedgerWriter& ledger, const Clock& clock, std::string owner)
    : m_store(store), m_ledger(ledger), m_clock(clock), m_owner(std::move(owner)) {
  m_ledger.set_maintenance([this] { maintain(); });
}

QuotaBook::~QuotaBook() {
  close();
}

Result<Reservation> QuotaBook::reserve(const ReservationRequest& request) {
  const UnixSeconds day = duration::utc_day_start(request.now);
  if (!request.limit) {
    const std::lock_guard lock(m_mutex);
    return Reservation{m_next_id++, request.wanted, QuotaStatus{0, 0, std::nullopt, day + k_book_day}};
  }
  if (auto failing = m_ledger.failing()) {
    return fail(Errc::storage, fmt::format("{} (usage cannot be recorded)", failing->message));
  }
  std::unique_lock lock(m_mutex);
  for (;;) {
    if (m_closed) {
      return fail(Errc::internal, "the quota book is closed (the server is stopping)");
    }
    Subject& subject = subject_for(request.subject, day);
    Lease* lease = usable_lease(subject, request.now);
    const std::int64_t amount = covered_amount(request);
    if (lease != nullptr && lease->available() >= amount && amount > 0) {
      return hold(subject, subject.lease_id, amount, request.now, request.limit);
    }
    if (!subject.taking) {
      return take(lock, request);
    }
    m_taken.wait(lock);
  }
}

// Grow the subject's lease in the store (or take one), unlocked, then hold
// the reservation it grants.
Result<Reservation> QuotaBook::take(std::unique_lock<std::mutex>& lock, const ReservationRequest& request) {
  const UnixSeconds day = duration::utc_day_start(request.now);
  Subject& subject = subject_for(request.subject, day);
  Lease* lease = usable_lease(subject, request.now);
  LeaseRequest asked{request, lease != nullptr ? subject.lease_id : 0, 0, request.now + k_lease_ttl};
  asked.reservation.owner = m_owner;
  asked.available = lease != nullptr ? lease->available() : 0;
  if (lease != nullptr) {
    lease->held += asked.available; // ours while the store decides
  }
  subject.taking = true;
  lock.unlock();
  auto grant = m_store.take_lease(asked, request.now);
  lock.lock();
  Subject& after = subject_for(request.subject, day);
  after.taking = false;
  m_taken.notify_all();
  if (const auto it = m_leases.find(asked.lease_id); asked.lease_id != 0 && it != m_leases.end()) {
    it->second.held -= asked.available;
  }
  if (!grant) {
    return propagate(grant);
  }
  if (!grant->granted()) {
    after.used = grant->used;
    after.elsewhere = std::max<std::int64_t>(0, grant->held - asked.available - after.held);
    return Reservation{0, 0, status_of(after, request.limit)};
  }
  apply(after, asked, *grant);
  return hold(after, grant->lease_id, grant->amounts.reservation, request.now, request.limit);
}

// Take `grant` into memory: the lease grown, or a new one (the old retired).
void QuotaBook::apply(Subject& subject, const LeaseRequest& asked, const LeaseGrant& grant) {
  if (grant.lease_id != asked.lease_id && asked.lease_id != 0) {
    retire(asked.lease_id);
  }
  if (subject.lease_id != 0 && subject.lease_id != grant.lease_id) {
    retire(subject.lease_id);
  }
  Lease& lease = m_leases[grant.lease_id];
  if (lease.subject.empty()) {
    lease.subject = asked.reservation.subject;
    lease.day = duration::utc_day_start(asked.reservation.now);
  }
  lease.outstanding += grant.amounts.added;
  lease.expires_at = grant.expires_at;
  subject.lease_id = grant.lease_id;
  // Rows of this lease still queued keep their tokens in its store outstanding, not yet in used.
  const std::int64_t pending = std::max<std::int64_t>(0, grant.outstanding - lease.outstanding);
  subject.used = grant.used + pending;
  subject.elsewhere = std::max<std::int64_t>(0, grant.held - grant.outstanding);
}

Reservation QuotaBook::hold(Subject& subject, std::int64_t lease_id, std::int64_t amount, UnixSeconds now,
                            std::optional<std::int64_t> limit) {
  Lease& lease = m_leases[lease_id];
  lease.held += amount;
  lease.last_reserved = now;
  subject.held += amount;
  const std::int64_t id = m_next_id++;
  m_held.emplace(id, Held{lease_id, lease.subject, subject.day, amount});
  return Reservation{id, amount, status_of(subject, limit)};
}

void QuotaBook::settle(std::int64_t reservation_id, const UsageRecord& usage) {
  const std::lock_guard lock(m_mutex);
  const auto held = m_held.find(reservation_id);
  if (held == m_held.end()) {
    m_ledger.append_row(0, usage);
    return;
  }
  const Held hold = held->second;
  m_held.erase(held);
  const std::int64_t spent = usage.total_tokens();
  if (const auto subject = m_subjects.find(hold.subject);
      subject != m_subjects.end() && subject->second.day == hold.day) {
    subject->second.held -= hold.amount;
    subject->second.used += spent;
  }
  m_ledger.append_row(hold.lease_id, usage);
  const auto lease = m_leases.find(hold.lease_id);
  if (lease == m_leases.end()) {
    return;
  }
  lease->second.held -= hold.amount;
  lease->second.outstanding = std::max<std::int64_t>(0, lease->second.outstanding - spent);
  if (lease->second.retired && lease->second.held <= 0) {
    retire(hold.lease_id); // now closes it: every row of it is queued
  }
}

QuotaStatus QuotaBook::status(const std::string& subject, UnixSeconds now,
                              std::optional<std::int64_t> limit) const {
  const UnixSeconds day = duration::utc_day_start(now);
  const std::lock_guard lock(m_mutex);
  const auto found = m_subjects.find(subject);
  if (!limit || found == m_subjects.end() || found->second.day != day) {
    return QuotaStatus{0, 0, limit, day + k_book_day};
  }
  return status_of(found->second, limit);
}

QuotaStatus QuotaBook::status_of(const Subject& subject, std::optional<std::int64_t> limit) const {
  return QuotaStatus{subject.used, subject.elsewhere + std::max<std::int64_t>(0, subject.held), limit,
                     subject.day + k_book_day};
}

// The subject's state for `day`: a new day retires the old day's lease.
QuotaBook::Subject& QuotaBook::subject_for(const std::string& name, UnixSeconds day) {
  Subject& subject = m_subjects[name];
  if (subject.day != day && !subject.taking) {
    if (subject.lease_id != 0) {
      retire(subject.lease_id);
    }
    subject = Subject{day, 0, 0, 0, 0, false};
  }
  return subject;
}

// The subject's lease while it may serve: not retired and not about to expire.
QuotaBook::Lease* QuotaBook::usable_lease(Subject& subject, UnixSeconds now) {
  const auto it = m_leases.find(subject.lease_id);
  if (subject.lease_id == 0 || it == m_leases.end() || it->second.retired) {
    return nullptr;
  }
  return now + k_extend_every < it->second.expires_at ? &it->second : nullptr;
}

// No new reservations from `lease_id`; once none is in flight, its unused
// tokens go back (queued after its rows, so the store's count stays exact).
void QuotaBook::retire(std::int64_t lease_id) {
  const auto it = m_leases.find(lease_id);
  if (it == m_leases.end()) {
    return;
  }
  it->second.retired = true;
  if (it->second.held > 0) {
    return;
  }
  m_ledger.append(LedgerEntry{LedgerEntry::Kind::close, lease_id, 0, {}});
  if (const auto subject = m_subjects.find(it->second.subject);
      subject != m_subjects.end() && subject->second.lease_id == lease_id) {
    subject->second.lease_id = 0;
  }
  m_leases.erase(it);
}

void QuotaBook::maintain() {
  const UnixSeconds now = m_clock.now();
  bool sweep = false;
  {
    const std::lock_guard lock(m_mutex);
    if (m_closed || now < m_next_extend) {
      return;
    }
    m_next_extend = now + k_extend_every;
    sweep = now >= m_next_sweep;
    if (sweep) {
      m_next_sweep = now + k_lease_ttl;
    }
    std::vector<std::int64_t> idle;
    for (const auto& [id, lease] : m_leases) {
      if (lease.held <= 0
          && (now - lease.last_reserved >= k_idle_return || lease.day != duration::utc_day_start(now))) {
        idle.push_back(id);
      }
    }
    for (const std::int64_t id : idle) {
      retire(id);
    }
    std::erase_if(m_subjects, [&](const auto& entry) {
      const Subject& s = entry.second;
      return s.lease_id == 0 && s.held <= 0 && !s.taking && s.day != duration::utc_day_start(now);
    });
  }
  extend(now);
  if (sweep) {
    (void)m_store.release_orphaned(owner_may_be_alive); // best effort; expiry frees them anyway
  }
}

// Move every lease's expiry on; a lease the store no longer has serves no more.
void QuotaBook::extend(UnixSeconds now) {
  std::vector<std::int64_t> ids;
  {
    const std::lock_guard lock(m_mutex);
    for (const auto& [id, lease] : m_leases) {
      ids.push_back(id);
    }
  }
  if (ids.empty()) {
    return;
  }
  auto extended = m_store.extend_leases(ids, now, now + k_lease_ttl);
  if (!extended) {
    return; // the leases stop serving at their expiry; reserve then asks the store again
  }
  const std::lock_guard lock(m_mutex);
  for (const std::int64_t id : ids) {
    const auto it = m_leases.find(id);
    if (it == m_leases.end()) {
      continue;
    }
    if (std::find(extended->begin(), extended->end(), id) != extended->end()) {
      it->second.expires_at = std::max(it->second.expires_at, now + k_lease_ttl);
    } else {
      retire(id);
    }
  }
}

void QuotaBook::close() {
  m_ledger.set_maintenance({}); // first: maintain takes m_mutex
  const std::lock_guard lock(m_mutex);
  if (m_closed) {
    return;
  }
  m_closed = true;
  std::vector<std::int64_t> ids;
  for (const auto& [id, lease] : m_leases) {
    ids.push_back(id);
  }
  for (const std::int64_t id : ids) {
    retire(id);
  }
  m_taken.notify_all();
}

} // namespace claudegate::store
