// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/jose/keys.hpp"

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace claudegate::keyset {

// Verification keys looked up by kid in memory: never a path, never SQL,
// never a try-every-key fallback.
class KeySet {
public:
  // Add `key` under its thumbprint kid; replaces a key with the same kid.
  void add(keys::Key key);
  // Add `key` under `kid` (external JWKS keep their own kid).
  void add(std::string kid, keys::Key key);
  // The key for exactly `kid`, or nullptr.
  const keys::Key* find(std::string_view kid) const;
  // Every key with its kid, sorted by kid (stable output for jwks/list).
  std::vector<std::pair<std::string, const keys::Key*>> entries() const;
  std::size_t size() const { return m_keys.size(); }
  bool empty() const { return m_keys.empty(); }

private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, keys::Key, Hash, std::equal_to<>> m_keys;
};

} // namespace claudegate::keyset
