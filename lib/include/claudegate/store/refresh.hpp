// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/jose/keys.hpp"
#include "claudegate/jose/token.hpp"
#include "claudegate/store/families.hpp"

#include <cstdint>
#include <string>
#include <string_view>

// Rotating refresh tokens (DESIGN.md §3): opaque "cgr_" + 256 random bits, only
// their SHA-256 stored, single use, grouped in families with an absolute
// lifetime; presenting a used token revokes the whole family.
namespace claudegate::refresh {

inline constexpr std::string_view k_prefix = "cgr_";

struct Lifetimes {
  std::int64_t refresh_ttl = 7 * 86400;
  std::int64_t family_ttl = 30 * 86400;
};

struct TokenPair {
  token::IssuedAccessToken access; // carries "fid"
  std::string refresh_token;
  UnixSeconds refresh_expires_at = 0;
  std::string family_id;
};

// The stored form of refresh token `token`: base64url SHA-256. Fails with internal.
Result<std::string> hash(std::string_view token);

// Check that `token` looks like one of ours ("cgr_" + 43 base64url chars);
// fails with malformed otherwise, before any store access.
Result<void> check_format(std::string_view token);

// Start a new family for `request` at `now`: an access token (with fid) and
// the family's first refresh token. Fails with config, internal or storage.
Result<TokenPair> start_family(store::FamilyStore& store, const token::AccessTokenRequest& request,
                               const keys::Key& signer, const Lifetimes& lifetimes, UnixSeconds now,
                               RandomSource& rng);

// Exchange `presented` for a new pair in the same family, re-issuing the
// family's grant with `signer`. Fails with malformed, claim_mismatch
// (unknown token), expired, revoked (the family, or its subject by a
// cut-off at or after the family began), refresh_reuse (family now
// revoked), internal or storage.
Result<TokenPair> rotate(store::FamilyStore& store, std::string_view presented, const keys::Key& signer,
                         const Lifetimes& lifetimes, UnixSeconds now, RandomSource& rng);

} // namespace claudegate::refresh
