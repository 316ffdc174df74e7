// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"

#include <cstdint>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

// Brute-force protection (SPEC §6): failed authentications counted per
// client IP and per presented API key id in a sliding minute; an IP above
// its threshold is locked out of the authentication routes, first for
// `first`, then for `repeat` while it is still a repeat offender. State is in
// memory, per process, thread-safe and bounded.
namespace claudegate::proxy {

struct LockoutPolicy {
  std::int64_t ip_failures = 10;  // failures per minute from one IP that lock it
  std::int64_t key_failures = 10; // failures per minute on one key id that put it under attack
  std::int64_t first = 15 * 60;   // seconds of a first lockout
  std::int64_t repeat = 60 * 60;  // seconds of a lockout while the IP is a repeat offender
  // Seconds an IP stays a repeat offender after a lockout ends: a day, so a
  // patient guesser gets at most ~24 one-hour rounds of `ip_failures` guesses.
  std::int64_t memory = 24 * 60 * 60;
  std::size_t capacity = 10'000; // IPs tracked, and key ids tracked; the least recently failed go first
};

// What one recorded failure changed.
struct LockoutEvent {
  bool ip_locked = false;    // the IP is locked from now on
  bool repeat = false;       // ... for the repeat duration
  std::int64_t duration = 0; // seconds of that lockout
  bool key_attacked = false; // the key id just went above its threshold
  bool by_key = false;       // the IP was locked for failing on a key id under attack
};

// Lockouts begun since start and those in force now (for /metrics).
struct LockoutCounts {
  std::int64_t total = 0;
  std::int64_t active = 0;
};

// The API key id in a presented `cgk_<id>_<secret>` credential: the part
// between "cgk_" and the next "_" when it is 1–64 letters, digits or '-';
// empty for anything else, so a mistyped secret is never taken for an id.
std::string key_id_of(std::string_view presented);

// What a client address is counted and locked as: an IPv4 address itself
// (an IPv4-mapped IPv6 one as IPv4), an IPv6 address by its /64, since one
// host commonly holds a whole /64; anything unparsable as given.
std::string lockout_subject(std::string_view ip);

class AuthLockout {
public:
  AuthLockout(LockoutPolicy policy, const Clock& clock);

  // Seconds (>= 1) until `ip` may authenticate again, or nullopt when it is not locked.
  std::optional<std::int64_t> check(std::string_view ip) const;

  // Count one failed authentication from `ip` presenting key id `key_id`
  // (empty: not an API key). Locks `ip` when its failures of the last minute
  // reach the policy's threshold, or when it fails on a key id whose own
  // failures reached theirs (a guess spread over many IPs then costs each
  // IP its lockout; a request that succeeds is never refused for a key id).
  LockoutEvent record_failure(std::string_view ip, std::string_view key_id);

  LockoutCounts counts() const;
  // IPs and key ids tracked (for the memory bound's tests).
  std::size_t tracked_ips() const;
  std::size_t tracked_keys() const;

  const LockoutPolicy& policy() const { return m_policy; }

private:
  struct Record {
    std::deque<UnixSeconds> failures; // within the last minute, oldest first, at most the threshold
    UnixSeconds locked_until = 0;     // IP: locked out; key id: under attack
    UnixSeconds offender_until = 0;   // IP: a lockout that begins before this is a repeat
    std::list<std::string>::iterator order;
  };

  // Records keyed by IP or key id, the least recently failed evicted beyond the capacity.
  class Table {
  public:
    explicit Table(std::size_t capacity) : m_capacity(capacity) {}
    Record& touch(std::string_view name);
    const Record* find(std::string_view name) const;
    std::size_t size() const { return m_records.size(); }
    template <typename F> void each(F&& visit) const {
      for (const auto& [name, record] : m_records) {
        visit(record);
      }
    }

  private:
    std::size_t m_capacity;
    std::unordered_map<std::string, Record> m_records;
    std::list<std::string> m_order; // most recently failed first
  };

  bool count_failure(Record& record, std::int64_t threshold, UnixSeconds now) const;
  bool key_under_attack(std::string_view key_id, UnixSeconds now, LockoutEvent& event);
  void lock_out(Record& ip, UnixSeconds now, LockoutEvent& event);

  LockoutPolicy m_policy;
  const Clock& m_clock;
  mutable std::mutex m_mutex;
  Table m_ips;
  Table m_keys;
  std::int64_t m_total = 0;
};

} // namespace claudegate::proxy
