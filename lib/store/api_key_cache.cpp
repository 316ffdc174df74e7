// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/api_key_cache.hpp"

#include "claudegate/store/api_key.hpp"

#include <algorithm>

namespace claudegate::api_key {

KeyCache::KeyCache(std::size_t capacity) : m_keys(capacity) {
}

Result<std::shared_ptr<const AuthenticatedKey>> KeyCache::authenticate(store::Store& store,
                                                                       store::EpochSource& epochs,
                                                                       std::string_view presented,
                                                                       UnixSeconds now) {
  auto parts = parse(presented);
  if (!parts) {
    return propagate(parts);
  }
  auto hit = m_keys.find(parts->id, epochs, [&](const AuthenticatedKey& key) {
    return secret_matches(key.record, parts->secret) && check_usable(key.record, now).has_value();
  });
  if (!hit) {
    return propagate(hit);
  }
  auto key = *hit ? std::move(hit) : load(store, epochs, presented, parts->id, now);
  if (key) {
    note_use(store, (*key)->record.id, now);
  }
  return key;
}

// The full path. The epoch is read before the key: a revocation committed
// after this read moves the epoch on, so the next hit reads the key again.
Result<std::shared_ptr<const AuthenticatedKey>> KeyCache::load(store::Store& store,
                                                               store::EpochSource& epochs,
                                                               std::string_view presented,
                                                               const std::string& id, UnixSeconds now) {
  auto epoch = epochs.current_epoch();
  if (!epoch) {
    return propagate(epoch);
  }
  auto record = api_key::authenticate(store, presented, now);
  auto token = record ? token_of(*record) : propagate(record);
  if (!token) {
    return propagate(token);
  }
  const UnixSeconds until = std::min(record->expires_at, record->retires_at.value_or(record->expires_at));
  auto key =
      std::make_shared<const AuthenticatedKey>(AuthenticatedKey{std::move(*record), std::move(*token)});
  m_keys.remember(id, *key, *epoch, until, now);
  return key;
}

// Last use is a hint for `revoke --list`: written at most once a
// k_touch_interval per key and process, and a failed write is not the
// request's failure.
void KeyCache::note_use(store::Store& store, const std::string& id, UnixSeconds now) {
  {
    const std::lock_guard lock(m_touch_mutex);
    auto [it, fresh] = m_touched.try_emplace(id, now);
    if (!fresh && now - it->second < k_touch_interval) {
      return;
    }
    it->second = now;
  }
  (void)store.touch_api_key(id, now);
}

} // namespace claudegate::api_key
