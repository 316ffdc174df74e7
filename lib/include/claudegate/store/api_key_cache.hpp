// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/store/api_key.hpp"
#include "claudegate/store/api_keys.hpp"
#include "claudegate/store/epoch_cache.hpp"
#include "claudegate/store/store.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

// API keys that already authenticated, kept so serve-local reads the store
// once per key, not once per request.
namespace claudegate::api_key {

// How often, at most, a key's last use is written to the store.
inline constexpr UnixSeconds k_touch_interval = 60;

class KeyCache {
public:
  // At most `capacity` keys (> 0) are held at once.
  explicit KeyCache(std::size_t capacity);

  // As api_key::authenticate(`store`, `presented`, `now`), with the same
  // verdicts. A hit needs the key's id looked up before, the revocation
  // epoch (as `epochs` gives it) unchanged since (revoking or rotating a
  // key moves it on), the presented secret to match the stored hash and the key to be
  // usable at `now` (expiry, end of a rotation overlap); anything else takes
  // the full path, and only successes are kept, with the token of the key's
  // grant built once (token_of). Records the key's last use
  // (store::ApiKeyStore::touch_api_key) at most every k_touch_interval
  // seconds. Thread-safe.
  Result<std::shared_ptr<const AuthenticatedKey>>
  authenticate(store::Store& store, store::EpochSource& epochs, std::string_view presented, UnixSeconds now);

  // Hits, and authentications that took the full path, so far.
  std::uint64_t hits() const { return m_keys.hits(); }
  std::uint64_t misses() const { return m_keys.misses(); }

private:
  Result<std::shared_ptr<const AuthenticatedKey>> load(store::Store& store, store::EpochSource& epochs,
                                                       std::string_view presented, const std::string& id,
                                                       UnixSeconds now);
  void note_use(store::Store& store, const std::string& id, UnixSeconds now);

  epoch_cache::EpochCache<AuthenticatedKey> m_keys;
  std::mutex m_touch_mutex;
  std::unordered_map<std::string, UnixSeconds> m_touched; // key id → last use written
};

} // namespace claudegate::api_key
