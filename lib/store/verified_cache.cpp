// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/verified_cache.hpp"

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

VerifiedCache::VerifiedCache(std::size_t capacity) : m_entries(capacity) {
}

Result<token::VerifiedToken> VerifiedCache::verify(std::string_view token, const keyset::KeySet& keys,
                                                   const claims::VerifyPolicy& policy, UnixSeconds now,
                                                   store::RevocationStore* store,
                                                   store::EpochSource& epochs) {
  auto hit = m_entries.find(token, epochs,
                            [&](const Entry& entry) { return still_valid(entry, keys, policy, now); });
  if (!hit) {
    return propagate(hit);
  }
  if (*hit) {
    return (*hit)->verified;
  }
  // The epoch is read just before the revocation lookups, and only for a
  // token whose signature and claims passed: a revocation committed after
  // this read moves the epoch on, so the next hit checks again.
  std::int64_t epoch = 0;
  auto verified =
      revocation::verify_unrevoked(token, keys, policy, now, [&]() -> Result<store::RevocationStore*> {
        auto read = epochs.current_epoch();
        if (!read) {
          return propagate(read);
        }
        epoch = *read;
        return store;
      });
  if (verified) {
    const keys::Key* key = keys.find(verified->kid);
    m_entries.remember(token, Entry{*verified, key != nullptr ? key->kid() : std::string{}}, epoch,
                       expiry_of(verified->claims, policy, now), now);
  }
  return verified;
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

std::uint64_t VerifiedCache::hits() const {
  return m_entries.hits();
}

std::uint64_t VerifiedCache::misses() const {
  return m_entries.misses();
}

} // namespace claudegate::verified_cache
