// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"

#include <functional>
#include <optional>
#include <string>

// The store's role for refresh-token families: creation, single-use rotation,
// lookup and revocation of a family (DESIGN.md §3).
namespace claudegate::store {

struct NewFamily {
  std::string family_id; // random, base64url
  std::string subject;
  json::Json grant; // what each rotation re-issues (AccessTokenRequest as JSON)
  UnixSeconds created_at = 0;
  UnixSeconds expires_at = 0; // absolute family lifetime (family_ttl)
  std::string token_hash;     // SHA-256 of the first refresh token (base64url)
  UnixSeconds token_expires_at = 0;
};

struct Rotation {
  std::string presented_hash; // SHA-256 of the presented refresh token
  std::string new_hash;       // SHA-256 of its successor
  UnixSeconds now = 0;
  std::int64_t refresh_ttl = 0; // successor lifetime, capped by the family's expiry
};

struct RotatedFamily {
  std::string family_id;
  std::string subject;
  json::Json grant;
  int generation = 0;               // of the successor token (the first is 0)
  UnixSeconds token_expires_at = 0; // of the successor token
};

// Called inside the rotation transaction once the successor is recorded; a
// failure (say, signing the access token) rolls the rotation back.
using MintFn = std::function<Result<void>(const RotatedFamily&)>;

// Refresh-token families, one role of a Store.
class FamilyStore {
public:
  virtual ~FamilyStore() = default;

  // Create a family with its first refresh token. Fails with storage.
  virtual Result<void> create_family(const NewFamily& family) = 0;

  // Exchange the presented refresh token for its successor, single use, in
  // one transaction; `mint` runs before commit. Fails with claim_mismatch
  // (unknown token), expired (token or family past its expiry; family left
  // untouched), revoked (family revoked, or its subject cut off by
  // revoke_subject at or after the family began), refresh_reuse (token already used:
  // the family is revoked and audited before returning), or storage.
  virtual Result<RotatedFamily> rotate(const Rotation& rotation, const MintFn& mint) = 0;

  // The family id of refresh token hash `token_hash`, if known.
  virtual Result<std::optional<std::string>> family_of(const std::string& token_hash) = 0;

  // Revoke family `family_id` (idempotent). Fails with claim_mismatch when unknown.
  virtual Result<void> revoke_family(const std::string& family_id, const std::string& reason,
                                     UnixSeconds now) = 0;
};

} // namespace claudegate::store
