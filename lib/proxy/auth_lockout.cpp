// SPDX-License-Identifier: Apache-2.0
#include "auth_lockout.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>

namespace claudegate::proxy {

namespace {

constexpr UnixSeconds k_window = 60;
constexpr std::string_view k_key_prefix = "cgk_";
constexpr std::size_t k_max_key_id = 64;

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

} // namespace

std::string key_id_of(std::string_view presented) {
  if (!presented.starts_with(k_key_prefix)) {
    return {};
  }
  const std::string_view rest = presented.substr(k_key_prefix.size());
  const auto end = rest.find('_');
  if (end == std::string_view::npos || end == 0 || end > k_max_key_id) {
    return {};
  }
  const std::string_view id = rest.substr(0, end);
  return std::ranges::all_of(id, id_char) ? std::string(id) : std::string{};
}

std::string lockout_subject(std::string_view ip) {
  const std::string text(ip);
  std::array<unsigned char, 16> bytes{};
  if (text.find(':') == std::string::npos || ::inet_pton(AF_INET6, text.c_str(), bytes.data()) != 1) {
    return text;
  }
  constexpr std::array<unsigned char, 12> k_v4_mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  std::array<char, INET6_ADDRSTRLEN> out{};
  if (std::equal(k_v4_mapped.begin(), k_v4_mapped.end(), bytes.begin())) {
    ::inet_ntop(AF_INET, bytes.data() + 12, out.data(), out.size());
    return out.data();
  }
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  ::inet_ntop(AF_INET6, bytes.data(), out.data(), out.size());
  return std::string(out.data()) + "/64";
}

AuthLockout::Record& AuthLockout::Table::touch(std::string_view name) {
  auto it = m_records.find(std::string(name));
  if (it != m_records.end()) {
    m_order.splice(m_order.begin(), m_order, it->second.order);
    return it->second;
  }
  if (m_records.size() >= std::max<std::size_t>(1, m_capacity)) {
    m_records.erase(m_order.back());
    m_order.pop_back();
  }
  m_order.emplace_front(name);
  auto& record = m_records[m_order.front()];
  record.order = m_order.begin();
  return record;
}

const AuthLockout::Record* AuthLockout::Table::find(std::string_view name) const {
  const auto it = m_records.find(std::string(name));
  return it == m_records.end() ? nullptr : &it->second;
}

AuthLockout::AuthLockout(LockoutPolicy policy, const Clock& clock)
    : m_policy(policy), m_clock(clock), m_ips(policy.capacity), m_keys(policy.capacity) {
}

std::optional<std::int64_t> AuthLockout::check(std::string_view ip) const {
  const UnixSeconds now = m_clock.now();
  const std::lock_guard lock(m_mutex);
  const Record* record = m_ips.find(ip);
  if (record == nullptr || record->locked_until <= now) {
    return std::nullopt;
  }
  return record->locked_until - now;
}

// Add a failure at `now` to `record`'s sliding minute; true when it holds `threshold` of them.
bool AuthLockout::count_failure(Record& record, std::int64_t threshold, UnixSeconds now) const {
  auto& failures = record.failures;
  while (!failures.empty() && failures.front() <= now - k_window) {
    failures.pop_front();
  }
  failures.push_back(now);
  const auto limit = static_cast<std::size_t>(std::max<std::int64_t>(1, threshold));
  while (failures.size() > limit) { // older ones cannot matter any more
    failures.pop_front();
  }
  return failures.size() >= limit;
}

// Count a failure on `key_id`; true while the key id is under attack.
bool AuthLockout::key_under_attack(std::string_view key_id, UnixSeconds now, LockoutEvent& event) {
  if (key_id.empty()) {
    return false;
  }
  Record& key = m_keys.touch(key_id);
  if (key.locked_until > now) {
    return true;
  }
  if (!count_failure(key, m_policy.key_failures, now)) {
    return false;
  }
  key.locked_until = now + m_policy.first;
  key.failures.clear();
  event.key_attacked = true;
  return true;
}

void AuthLockout::lock_out(Record& ip, UnixSeconds now, LockoutEvent& event) {
  event.ip_locked = true;
  event.repeat = now < ip.offender_until;
  event.duration = event.repeat ? m_policy.repeat : m_policy.first;
  ip.locked_until = now + event.duration;
  ip.offender_until = ip.locked_until + m_policy.memory;
  ip.failures.clear(); // a fresh minute once the lockout ends
  ++m_total;
}

LockoutEvent AuthLockout::record_failure(std::string_view ip, std::string_view key_id) {
  const UnixSeconds now = m_clock.now();
  const std::lock_guard lock(m_mutex);
  LockoutEvent event;
  const bool attacked = key_under_attack(key_id, now, event);
  Record& record = m_ips.touch(ip);
  if (record.locked_until > now) {
    return event; // already locked: a caller that did not check first
  }
  const bool over = count_failure(record, m_policy.ip_failures, now);
  if (over || attacked) {
    event.by_key = !over;
    lock_out(record, now, event);
  }
  return event;
}

LockoutCounts AuthLockout::counts() const {
  const UnixSeconds now = m_clock.now();
  const std::lock_guard lock(m_mutex);
  LockoutCounts counts{m_total, 0};
  m_ips.each([&](const Record& record) {
    if (record.locked_until > now) {
      ++counts.active;
    }
  });
  return counts;
}

std::size_t AuthLockout::tracked_ips() const {
  const std::lock_guard lock(m_mutex);
  return m_ips.size();
}

std::size_t AuthLockout::tracked_keys() const {
  const std::lock_guard lock(m_mutex);
  return m_keys.size();
}

} // namespace claudegate::proxy
