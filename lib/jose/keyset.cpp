// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/keyset.hpp"

#include <algorithm>

namespace claudegate::keyset {

void KeySet::add(keys::Key key) {
  std::string kid = key.kid();
  add(std::move(kid), std::move(key));
}

void KeySet::add(std::string kid, keys::Key key) {
  m_keys.insert_or_assign(std::move(kid), std::move(key));
}

const keys::Key* KeySet::find(std::string_view kid) const {
  const auto it = m_keys.find(kid);
  return it == m_keys.end() ? nullptr : &it->second;
}

std::vector<std::pair<std::string, const keys::Key*>> KeySet::entries() const {
  std::vector<std::pair<std::string, const keys::Key*>> out;
  out.reserve(m_keys.size());
  for (const auto& [kid, key] : m_keys) {
    out.emplace_back(kid, &key);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

} // namespace claudegate::keyset
