// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/revocation_watch.hpp"

#include "store_support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace claudegate;
using namespace claudegate::test;
using namespace std::chrono_literals;

namespace {

constexpr UnixSeconds k_now = 1'795'428'000;

// Poll `watch` until it gives an epoch other than `before` or `limit` passes; the epoch seen.
std::int64_t epoch_after(store::EpochSource& watch, std::int64_t before, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::int64_t seen = before;
  while (seen == before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(2ms);
    if (auto read = watch.current_epoch()) {
      seen = *read;
    }
  }
  return seen;
}

// A revocation store whose epoch reads can be made to fail.
class FlakyEpochs final : public store::RevocationStore {
public:
  std::atomic<bool> failing{false};
  std::atomic<std::int64_t> epoch{7};

  Result<std::int64_t> revocation_epoch() override {
    if (failing) {
      return fail(Errc::storage, "the store is down");
    }
    return epoch.load();
  }
  Result<void> revoke_jti(const std::string&, std::optional<UnixSeconds>, const std::string&,
                          const std::string&, UnixSeconds) override {
    return {};
  }
  Result<std::int64_t> revoke_subject(const std::string&, UnixSeconds, const std::string&,
                                      UnixSeconds) override {
    return 0;
  }
  Result<std::optional<store::Revocation>> find_revocation(const store::TokenIdentity&) override {
    return std::nullopt;
  }
  Result<std::vector<store::Revocation>> list_revocations() override { return {}; }
  Result<std::int64_t> prune(UnixSeconds, std::int64_t) override { return 0; }
};

} // namespace

TEST_CASE("revocation watch: another process's revocation is seen through file events, not the poll") {
  ScratchStore s;
  // A poll far longer than the test: only the store's push can move the epoch in time.
  auto watch = store::RevocationWatch::start(*s.store, {std::chrono::milliseconds{60'000}, 120s});
  REQUIRE(watch);
  const std::int64_t before = (*watch)->current_epoch().value();
  CHECK(before == s.store->revocation_epoch().value());
  std::this_thread::sleep_for(50ms); // the watch is waiting on the store's files by now
  auto other = s.open();             // another connection, as `claudegate revoke` has
  REQUIRE(other->revoke_jti("j1", k_now + 60, "alice", "test", k_now));
  const std::int64_t after = epoch_after(**watch, before, 2000ms);
  CHECK(after != before);
  CHECK(after == s.store->revocation_epoch().value());
}

TEST_CASE("revocation watch: refresh() publishes this process's revocation at once") {
  FlakyEpochs epochs;
  auto watch = store::RevocationWatch::start(epochs, {std::chrono::milliseconds{60'000}, 120s});
  REQUIRE(watch);
  CHECK((*watch)->current_epoch().value() == 7);
  epochs.epoch = 8;
  CHECK((*watch)->current_epoch().value() == 7); // not yet read
  REQUIRE((*watch)->refresh());
  CHECK((*watch)->current_epoch().value() == 8);
}

TEST_CASE("revocation watch: an epoch older than max_age is refused (fail closed), and recovers") {
  FlakyEpochs epochs;
  auto watch = store::RevocationWatch::start(epochs, {20ms, 100ms});
  REQUIRE(watch);
  epochs.failing = true;
  std::this_thread::sleep_for(250ms);
  auto stale = (*watch)->current_epoch();
  REQUIRE_FALSE(stale);
  CHECK(stale.error().code == Errc::storage);
  CHECK(stale.error().message.find("does not answer") != std::string::npos);
  epochs.failing = false;
  epochs.epoch = 9;
  CHECK(epoch_after(**watch, -1, 2000ms) == 9);
}

TEST_CASE("revocation watch: a store that cannot be read at start fails the start") {
  FlakyEpochs epochs;
  epochs.failing = true;
  auto watch = store::RevocationWatch::start(epochs);
  REQUIRE_FALSE(watch);
  CHECK(watch.error().code == Errc::storage);
}
