// SPDX-License-Identifier: Apache-2.0
#include "proxy/auth_guard.hpp"
#include "proxy/auth_lockout.hpp"

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

using namespace claudegate;
using namespace claudegate::proxy;

namespace {

constexpr UnixSeconds k_start = 1'800'000'000;

LockoutPolicy small_policy() {
  LockoutPolicy policy;
  policy.ip_failures = 3;
  policy.key_failures = 5;
  policy.first = 900;
  policy.repeat = 3600;
  policy.memory = 86'400;
  return policy;
}

// `n` failures from `ip`, the last one's event returned.
LockoutEvent fail(AuthLockout& lockout, const std::string& ip, int n, const std::string& key = {}) {
  LockoutEvent event;
  for (int i = 0; i < n; ++i) {
    event = lockout.record_failure(ip, key);
  }
  return event;
}

} // namespace

TEST_CASE("the default policy: 10 a minute per IP and per key id, 15 min, then 1 h within a day") {
  const LockoutPolicy policy = lockout_policy(config::defaults().serve.lockout);
  CHECK(policy.ip_failures == 10);
  CHECK(policy.key_failures == 10);
  CHECK(policy.first == 15 * 60);
  CHECK(policy.repeat == 60 * 60);
  CHECK(policy.memory == 24 * 60 * 60);
}

TEST_CASE("an IP is locked when its failures of the minute reach the threshold, not before") {
  FixedClock clock(k_start);
  AuthLockout lockout(small_policy(), clock);
  CHECK_FALSE(fail(lockout, "10.0.0.1", 2).ip_locked);
  CHECK_FALSE(lockout.check("10.0.0.1"));
  const LockoutEvent event = lockout.record_failure("10.0.0.1", "");
  CHECK(event.ip_locked);
  CHECK_FALSE(event.repeat);
  CHECK(event.duration == 900);
  CHECK(lockout.check("10.0.0.1") == 900);
  clock.set(k_start + 100);
  CHECK(lockout.check("10.0.0.1") == 800);
  CHECK(lockout.counts().total == 1);
  CHECK(lockout.counts().active == 1);
}

TEST_CASE("the window slides: failures older than a minute no longer count") {
  FixedClock clock(k_start);
  AuthLockout lockout(small_policy(), clock);
  fail(lockout, "10.0.0.1", 2);
  clock.set(k_start + 60); // the two failures at k_start are out of the window (now - 60, now]
  CHECK_FALSE(fail(lockout, "10.0.0.1", 2).ip_locked);
  clock.set(k_start + 119); // the two at +60 are still in it
  CHECK(lockout.record_failure("10.0.0.1", "").ip_locked);
}

TEST_CASE("a lockout expires; the next one within the memory is a repeat and lasts longer") {
  FixedClock clock(k_start);
  AuthLockout lockout(small_policy(), clock);
  fail(lockout, "10.0.0.1", 3);
  clock.set(k_start + 899);
  CHECK(lockout.check("10.0.0.1") == 1);
  clock.set(k_start + 900);
  CHECK_FALSE(lockout.check("10.0.0.1"));
  CHECK(lockout.counts().active == 0);
  // A fresh minute after the lockout: the failures before it do not count again.
  CHECK_FALSE(fail(lockout, "10.0.0.1", 2).ip_locked);
  const LockoutEvent again = lockout.record_failure("10.0.0.1", "");
  CHECK(again.ip_locked);
  CHECK(again.repeat);
  CHECK(again.duration == 3600);
  CHECK(lockout.check("10.0.0.1") == 3600);
  CHECK(lockout.counts().total == 2);
}

TEST_CASE("a repeat offender is forgotten after the memory") {
  FixedClock clock(k_start);
  AuthLockout lockout(small_policy(), clock);
  fail(lockout, "10.0.0.1", 3);
  clock.set(k_start + 900 + 86'400); // lockout over, and a day since
  const LockoutEvent event = fail(lockout, "10.0.0.1", 3);
  CHECK(event.ip_locked);
  CHECK_FALSE(event.repeat);
  CHECK(event.duration == 900);
}

TEST_CASE("another IP is never affected by a locked one") {
  FixedClock clock(k_start);
  AuthLockout lockout(small_policy(), clock);
  fail(lockout, "10.0.0.1", 3);
  CHECK(lockout.check("10.0.0.1"));
  CHECK_FALSE(lockout.check("10.0.0.2"));
  CHECK_FALSE(fail(lockout, "10.0.0.2", 2).ip_locked);
  CHECK_FALSE(lockout.check("10.0.0.2"));
}

TEST_CASE("a key id under attack from many IPs locks each IP that then fails on it") {
  FixedClock clock(k_start);
  AuthLockout lockout(small_policy(), clock);
  for (int i = 0; i < 4; ++i) {
    CHECK_FALSE(lockout.record_failure("10.0.1." + std::to_string(i), "abc").ip_locked);
  }
  const LockoutEvent fifth = lockout.record_failure("10.0.1.4", "abc");
  CHECK(fifth.key_attacked);
  CHECK(fifth.ip_locked);
  CHECK(fifth.by_key);
  const LockoutEvent sixth = lockout.record_failure("10.0.1.5", "abc");
  CHECK_FALSE(sixth.key_attacked);
  CHECK(sixth.ip_locked);
  // The IPs that failed before the key went over, and any that never failed, stay free.
  CHECK_FALSE(lockout.check("10.0.1.0"));
  CHECK_FALSE(lockout.check("10.0.9.9"));
  // A failure on another key id does not lock at once.
  CHECK_FALSE(lockout.record_failure("10.0.1.6", "other").ip_locked);
}

TEST_CASE("memory stays bounded: the least recently failed IP and key id are evicted") {
  FixedClock clock(k_start);
  LockoutPolicy policy = small_policy();
  policy.capacity = 4;
  AuthLockout lockout(policy, clock);
  fail(lockout, "10.0.0.0", 2);
  for (int i = 1; i < 100; ++i) {
    lockout.record_failure("10.0.0." + std::to_string(i), "k" + std::to_string(i));
  }
  CHECK(lockout.tracked_ips() == 4);
  CHECK(lockout.tracked_keys() == 4);
  // 10.0.0.0 was evicted, so its two failures are forgotten.
  CHECK_FALSE(lockout.record_failure("10.0.0.0", "").ip_locked);
  // A recently failing IP keeps its count.
  CHECK(fail(lockout, "10.0.0.99", 2).ip_locked);
}

TEST_CASE("key_id_of takes the id of a cgk_ key and nothing else") {
  CHECK(key_id_of("cgk_a1B2-c3_secretpart") == "a1B2-c3");
  CHECK(key_id_of("cgk_id_sec_ret") == "id");
  CHECK(key_id_of("eyJhbGciOi.x.y").empty());
  CHECK(key_id_of("cgk_nounderscoreatall").empty()); // could be a mistyped secret
  CHECK(key_id_of("cgk__secret").empty());
  CHECK(key_id_of("cgk_bad.id_secret").empty());
  CHECK(key_id_of("cgk_" + std::string(65, 'a') + "_s").empty());
}

TEST_CASE("lockout_subject: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64") {
  CHECK(lockout_subject("127.0.0.1") == "127.0.0.1");
  CHECK(lockout_subject("::ffff:10.1.2.3") == "10.1.2.3");
  CHECK(lockout_subject("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(lockout_subject("2001:db8:1:2::9") == lockout_subject("2001:db8:1:2:ffff::1"));
  CHECK(lockout_subject("2001:db8:1:3::9") != lockout_subject("2001:db8:1:2::9"));
  CHECK(lockout_subject("::1") == "::/64");
  CHECK(lockout_subject("not:an:ip") == "not:an:ip");
}

TEST_CASE("concurrent failures from many threads are all counted") {
  FixedClock clock(k_start);
  LockoutPolicy policy = small_policy();
  policy.ip_failures = 400;
  AuthLockout lockout(policy, clock);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] { fail(lockout, "10.0.0.1", 100); });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CHECK(lockout.check("10.0.0.1"));
  CHECK(lockout.counts().total == 1);
}

TEST_CASE("[serve.lockout] sets the policy; a misspelt key is refused with the right one") {
  auto parsed = config::parse("[serve.lockout]\nfailures_per_minute = 3\nkey_failures_per_minute = 7\n"
                              "first = \"2s\"\nrepeat = \"1h\"\nmemory = \"2d\"\n",
                              "claudegate.toml");
  REQUIRE_MESSAGE(parsed, (parsed ? "" : parsed.error().message));
  const LockoutPolicy policy = lockout_policy(parsed->serve.lockout);
  CHECK(policy.ip_failures == 3);
  CHECK(policy.key_failures == 7);
  CHECK(policy.first == 2);
  CHECK(policy.repeat == 3600);
  CHECK(policy.memory == 2 * 86'400);
  const auto misspelt = config::parse("[serve.lockout]\nfailure_per_minute = 3\n", "claudegate.toml");
  REQUIRE_FALSE(misspelt);
  CHECK(misspelt.error().message.find("failures_per_minute") != std::string::npos);
  CHECK_FALSE(config::parse("[serve.lockout]\nfailures_per_minute = 0\n", "claudegate.toml"));
  CHECK_FALSE(config::parse("[serve.lockout]\nfirst = \"0s\"\n", "claudegate.toml"));
}
