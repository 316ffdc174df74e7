// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"
#include "claudegate/jose/claims.hpp"
#include "claudegate/jose/keys.hpp"
#include "claudegate/jose/keyset.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Access tokens: issue and verify (signature + claims policy). Revocation
// is checked by the caller afterwards, so a bad signature never reaches the store.
namespace claudegate::token {

struct VerifiedToken {
  json::Json header;
  json::Json claims;
  std::string kid;
  keys::Alg alg = keys::Alg::RS256;
};

// Verify compact `token` with `keys` under `policy` at `now`: strict decode,
// key by kid, signature, then claims. Fails with malformed, unsupported,
// unknown_key, bad_signature, expired, not_yet_valid or claim_mismatch.
Result<VerifiedToken> verify(std::string_view token, const keyset::KeySet& keys,
                             const claims::VerifyPolicy& policy, UnixSeconds now);

struct AccessTokenRequest {
  std::string subject;
  std::string plan = "free";
  std::string scope = "claude:messages";
  std::vector<std::string> roles;
  std::optional<std::int64_t> daily_token_limit;
  json::Json extra_claims = json::Json::object(); // may not hold registered names
  std::int64_t ttl = 900;
  std::string issuer = "claudegate";
  std::string audience = "claude-proxy";
  std::optional<std::string> family_id;
};

struct IssuedAccessToken {
  std::string token;
  std::string jti;
  std::string kid;
  UnixSeconds issued_at = 0;
  UnixSeconds expires_at = 0;
  json::Json claims;
};

// Mint an access token for `request` signed by `signer` at `now`, with a
// 128-bit random jti from `rng`; header {alg, typ:"at+jwt", kid}. Fails with
// config (empty subject, ttl ≤ 0, extra claim overriding a registered one)
// or internal.
Result<IssuedAccessToken> issue(const AccessTokenRequest& request, const keys::Key& signer, UnixSeconds now,
                                RandomSource& rng);

} // namespace claudegate::token
