// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/verified_cache.hpp"

#include <utility>

namespace claudegate::verified_cache {

namespace {

// Entries of tokens without a numeric exp (never accepted today) still age out.
constexpr UnixSeconds k_fallback_lifetime = 300;

std::string typ_of(const json::Json& header) {
  const auto it = header.find("typ");
  return it != header.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

UnixSeconds expiry_of(const json::Json& claims, const claims::VerifyPolicy& policy, UnixSeconds now) {
  const auto it = claims.find("exp");
  if (it == claims.end() || !it->is_number()) {
    return now + k_fallback_lifetime;
  }
  return static_cast<UnixSeconds>(it->get<double>()) + policy.leeway;
}

} // namespace

VerifiedCache::VerifiedCache(std::size_t capacity) : m_capacity(capacity == 0 ? 1 : capacity) {
}

Result<token::VerifiedToken> VerifiedCache::verify(std::string_view token, const keyset::KeySet& keys,
                                                   const claims::VerifyPolicy& policy, UnixSeconds now,
                                                   store::RevocationStore* store) {
  if (auto entry = find(token); entry && still_valid(*entry, keys, policy, now)) {
    auto epoch = store == nullptr ? Result<std::int64_t>{0} : store->revocation_epoch();
    if (!epoch) {
      return std::unexpected(epoch.error());
    }
    if (*epoch == entry->epoch) {
      ++m_hits;
      return entry->verified;
    }
  }
  ++m_misses;
  // The epoch is read just before the revocation lookups, and only for a
  // token whose signature and claims passed: a revocation committed after
  // this read moves the epoch on, so the next hit checks again.
  std::int64_t epoch = 0;
  auto verified = revocation::verify_unrevoked(token, keys, policy, now, [&]() -> Result<store::RevocationStore*> {
    if (store != nullptr) {
      auto read = store->revocation_epoch();
      if (!read) {
        return std::unexpected(read.error());
      }
      epoch = *read;
    }
    return store;
  });
  if (verified) {
    const keys::Key* key = keys.find(verified->kid);
    remember(token,
             Entry{*verified, key != nullptr ? key->kid() : std::string{}, epoch,
                   expiry_of(verified->claims, policy, now)},
             now);
  }
  return verified;
}

std::shared_ptr<const VerifiedCache::Entry> VerifiedCache::find(std::string_view token) const {
  const std::lock_guard lock(m_mutex);
  const auto it = m_entries.find(token);
  return it == m_entries.end() ? nullptr : it->second;
}

// The same key material still verifies the token's kid, and the claims
// still hold at `now` under `policy`.
bool VerifiedCache::still_valid(const Entry& entry, const keyset::KeySet& keys,
                                const claims::VerifyPolicy& policy, UnixSeconds now) const {
  const keys::Key* key = keys.find(entry.verified.kid);
  if (key == nullptr || entry.thumbprint.empty() || key->kid() != entry.thumbprint) {
    return false;
  }
  return claims::check(typ_of(entry.verified.header), entry.verified.claims, policy, now).has_value();
}

// Keep `entry` for `token`; when full, drop the expired entries first and,
// if none expired, everything (a rare burst of distinct tokens).
void VerifiedCache::remember(std::string_view token, Entry entry, UnixSeconds now) {
  auto shared = std::make_shared<const Entry>(std::move(entry));
  const std::lock_guard lock(m_mutex);
  if (m_entries.size() >= m_capacity) {
    std::erase_if(m_entries, [now](const auto& item) { return item.second->expires_at <= now; });
    if (m_entries.size() >= m_capacity) {
      m_entries.clear();
    }
  }
  m_entries.insert_or_assign(std::string(token), std::move(shared));
}

std::uint64_t VerifiedCache::hits() const {
  return m_hits.load();
}

std::uint64_t VerifiedCache::misses() const {
  return m_misses.load();
}

} // namespace claudegate::verified_cache
