// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/store/revocation_watch.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

// Results of store checks (a verified token, an API key) kept in memory
// while the store's revocation epoch stays the one read before the check:
// any revocation, by any process, moves it on and makes every entry a miss.
namespace claudegate::epoch_cache {

template <typename Value> class EpochCache {
public:
  // At most `capacity` entries (> 0) are held at once.
  explicit EpochCache(std::size_t capacity) : m_capacity(capacity == 0 ? 1 : capacity) {}

  // The value kept for `key` when `usable(value)` holds and the epoch of
  // `epochs` is the one it was remembered with (a hit); null otherwise (a
  // miss). Fails with storage. Thread-safe.
  template <typename Usable>
  Result<std::shared_ptr<const Value>> find(std::string_view key, store::EpochSource& epochs,
                                            Usable&& usable) {
    if (auto entry = lookup(key); entry && usable(entry->value)) {
      auto epoch = epochs.current_epoch();
      if (!epoch) {
        return propagate(epoch);
      }
      if (*epoch == entry->epoch) {
        ++m_hits;
        return std::shared_ptr<const Value>(entry, &entry->value);
      }
    }
    ++m_misses;
    return nullptr;
  }

  // Keep `value` for `key`, checked when the epoch was `epoch`, until
  // `expires_at`; when full, drop the expired entries first and, if none
  // expired, everything (a rare burst of distinct keys). Thread-safe.
  void remember(std::string_view key, Value value, std::int64_t epoch, UnixSeconds expires_at,
                UnixSeconds now) {
    auto shared = std::make_shared<const Entry>(Entry{std::move(value), epoch, expires_at});
    const std::lock_guard lock(m_mutex);
    if (m_entries.size() >= m_capacity) {
      std::erase_if(m_entries, [now](const auto& item) { return item.second->expires_at <= now; });
      if (m_entries.size() >= m_capacity) {
        m_entries.clear();
      }
    }
    m_entries.insert_or_assign(std::string(key), std::move(shared));
  }

  // Hits, and look-ups that missed, so far.
  std::uint64_t hits() const { return m_hits.load(); }
  std::uint64_t misses() const { return m_misses.load(); }

private:
  struct Entry {
    Value value;
    std::int64_t epoch = 0;
    UnixSeconds expires_at = 0;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  std::shared_ptr<const Entry> lookup(std::string_view key) const {
    const std::lock_guard lock(m_mutex);
    const auto it = m_entries.find(key);
    return it == m_entries.end() ? nullptr : it->second;
  }

  std::size_t m_capacity;
  mutable std::mutex m_mutex;
  std::unordered_map<std::string, std::shared_ptr<const Entry>, Hash, std::equal_to<>> m_entries;
  std::atomic<std::uint64_t> m_hits = 0;
  std::atomic<std::uint64_t> m_misses = 0;
};

} // namespace claudegate::epoch_cache
