// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/store/revocations.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

// Where the caches of store checks (epoch_cache.hpp) read the revocation
// epoch their entries are compared with: straight from the store at each
// look-up (StoreEpoch: the CLI), or from a RevocationWatch that follows the
// store on a thread of its own (serve-local: no store read per request).
namespace claudegate::store {

class EpochSource {
public:
  virtual ~EpochSource() = default;

  // The revocation epoch a cache entry must have been checked under to be
  // used now. Fails with storage when it cannot be known.
  virtual Result<std::int64_t> current_epoch() = 0;

  // This process just wrote a revocation: make the next current_epoch()
  // reflect it. Fails with storage.
  virtual Result<void> refresh() = 0;
};

// Reads `store`'s epoch at every call; no store (nullptr): always 0, as
// nothing is ever revoked.
class StoreEpoch final : public EpochSource {
public:
  explicit StoreEpoch(RevocationStore* store) : m_store(store) {}
  Result<std::int64_t> current_epoch() override;
  Result<void> refresh() override { return {}; }

private:
  RevocationStore* m_store;
};

// Follows a store's revocation epoch from a thread of its own: woken by
// the store's push (RevocationStore::wait_for_revocation: NOTIFY on
// PostgreSQL, file events on SQLite) and polling at least every
// `poll` either way. current_epoch() is two atomic loads, and fails
// (storage) once the last successful read is older than `max_age`: while
// the store is unreachable no cache entry is trusted.
class RevocationWatch final : public EpochSource {
public:
  struct Options {
    std::chrono::milliseconds poll{250};
    std::chrono::milliseconds max_age{1000};
  };

  // Read `store`'s epoch once (fails with storage) and start following it.
  // `store` must outlive the watch and be thread-safe.
  static Result<std::unique_ptr<RevocationWatch>> start(RevocationStore& store, Options options);
  static Result<std::unique_ptr<RevocationWatch>> start(RevocationStore& store);

  RevocationWatch(const RevocationWatch&) = delete;
  RevocationWatch& operator=(const RevocationWatch&) = delete;
  ~RevocationWatch() override; // stops the thread (within one poll)

  Result<std::int64_t> current_epoch() override;
  // Read the store's epoch now, on the caller's thread.
  Result<void> refresh() override;

private:
  using Clock = std::chrono::steady_clock;
  RevocationWatch(RevocationStore& store, Options options);
  void follow(const std::stop_token& stop);

  RevocationStore& m_store;
  Options m_options;
  std::mutex m_read_mutex; // one read-and-publish at a time, so none publishes an older epoch
  std::atomic<std::int64_t> m_epoch{0};
  std::atomic<Clock::rep> m_read_at{0}; // steady time of the last successful read
  std::jthread m_thread;                // last: stopped and joined before the members above go
};

} // namespace claudegate::store
