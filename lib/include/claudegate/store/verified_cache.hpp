// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/jose/keyset.hpp"
#include "claudegate/jose/token.hpp"
#include "claudegate/store/epoch_cache.hpp"
#include "claudegate/store/revocation.hpp"
#include "claudegate/store/revocations.hpp"

#include <cstdint>
#include <string>
#include <string_view>

// Tokens that already passed revocation::verify_unrevoked, kept so a client
// presenting the same token again skips the signature and the revocation
// lookups (serve-local sees one token on every request of a session).
namespace claudegate::verified_cache {

class VerifiedCache {
public:
  // At most `capacity` tokens (> 0) are held at once.
  explicit VerifiedCache(std::size_t capacity);

  // As revocation::verify_unrevoked(`token`, `keys`, `policy`, `now`, `store`), with the
  // same verdicts. A hit needs the exact token bytes verified before by the
  // same key material (kid and thumbprint still in `keys`), the revocation
  // epoch (as `epochs` gives it) unchanged since its check, and claims::check to pass
  // again at `now` (so exp, nbf, iat, issuer and audience hold every time).
  // Anything else takes the full path; only successes are kept. Thread-safe.
  Result<token::VerifiedToken> verify(std::string_view token, const keyset::KeySet& keys,
                                      const claims::VerifyPolicy& policy, UnixSeconds now,
                                      store::RevocationStore* store, store::EpochSource& epochs);

  // Hits, and verifications that took the full path, so far.
  std::uint64_t hits() const;
  std::uint64_t misses() const;

private:
  struct Entry {
    token::VerifiedToken verified;
    std::string thumbprint;
  };

  bool still_valid(const Entry& entry, const keyset::KeySet& keys, const claims::VerifyPolicy& policy,
                   UnixSeconds now) const;

  epoch_cache::EpochCache<Entry> m_entries;
};

} // namespace claudegate::verified_cache
