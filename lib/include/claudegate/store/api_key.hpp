// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"
#include "claudegate/jose/token.hpp"
#include "claudegate/store/api_keys.hpp"
#include "claudegate/store/store.hpp"

#include <cstdint>
#include <string>
#include <string_view>

// API keys: "cgk_<id>_<secret>", the id 16 lowercase hex
// digits (public, never containing "_"), the secret 256 random bits as 43
// base64url characters (which may contain "_" and "-": the id ends at the
// first "_" after the prefix, so parsing is unambiguous). The store keeps
// the id and a hash of the secret; the key is shown once, when minted.
namespace claudegate::api_key {

inline constexpr std::string_view k_prefix = "cgk_";
inline constexpr std::size_t k_id_length = 16;     // hex digits, 64 random bits
inline constexpr std::size_t k_secret_length = 43; // base64url characters, 256 random bits

struct Parts {
  std::string id;
  std::string secret;
};

// A new key: its parts and the whole "cgk_<id>_<secret>" text.
struct MintedKey {
  Parts parts;
  std::string key;
};

// A fresh key from `rng`.
MintedKey mint(RandomSource& rng);

// True when `presented` begins like an API key ("cgk_"), well-formed or not:
// such a credential is never taken for a JWT.
bool looks_like_key(std::string_view presented);

// The id and secret of `presented`. Fails with malformed (the message never
// quotes the secret) unless it is "cgk_" + 16 lowercase hex + "_" + 43
// base64url characters.
Result<Parts> parse(std::string_view presented);

// The stored form of `secret`: base64url SHA-256. Fails with internal.
Result<std::string> hash_secret(std::string_view secret);

// The record of a key minted as `minted` for `request` at `now`, named
// `name`, valid for `ttl` seconds (> 0). Fails with config (bad request or
// ttl) or internal.
Result<store::ApiKeyRecord> new_record(const MintedKey& minted, const token::AccessTokenRequest& request,
                                       std::string name, std::int64_t ttl, UnixSeconds now);

// "active", "revoked", "expired", "retiring" (rotated, in its overlap) or
// "retired" (rotated, overlap over): `key`'s state at `now`.
std::string_view state_of(const store::ApiKeyRecord& key, UnixSeconds now);

// What `revoke --list --json` and GET /admin/keys show of `key` at `now`:
// id, name, sub, plan, scope, roles, times (RFC 3339, null when unset),
// rotated_from and state — never the secret or its hash.
json::Json summary_json(const store::ApiKeyRecord& key, UnixSeconds now);

// Whether `record` may be used at `now`: fails with revoked, expired (past
// expires_at) or revoked (rotated, past its overlap), each naming the id.
Result<void> check_usable(const store::ApiKeyRecord& record, UnixSeconds now);

// True when `secret` hashes to `record`'s secret_hash (compared in constant time).
bool secret_matches(const store::ApiKeyRecord& record, std::string_view secret);

// The claims an access token of `key`'s grant would carry (its extra
// claims, iss, aud, sub, plan, scope, roles, daily_token_limit), with the
// key's id as jti and its creation and expiry as iat and exp, as a verified
// token of typ "api_key": what serve-local treats the key as. Fails with
// storage when the stored grant is unreadable.
Result<token::VerifiedToken> token_of(const store::ApiKeyRecord& key);

// A key that authenticated, with the token of its grant (token_of).
struct AuthenticatedKey {
  store::ApiKeyRecord record;
  token::VerifiedToken token;
};

// The key `presented` authenticates at `now` in `keys`. Fails with
// malformed (not an API key), unknown_key (no key with that id),
// bad_signature (wrong secret), revoked (revoked, or rotated and past its
// overlap), expired, or storage. No message quotes the secret.
Result<store::ApiKeyRecord> authenticate(store::ApiKeyStore& keys, std::string_view presented,
                                         UnixSeconds now);

// As above, and fails with revoked when a revocation in `store` covers the
// key as a token of its grant (jti = its id, iat = its creation): its id
// deny-listed (revoke --jti) or its subject cut off at or after its
// creation (revoke --sub). What serve-local and every credential exchange use.
Result<store::ApiKeyRecord> authenticate(store::Store& store, std::string_view presented, UnixSeconds now);

} // namespace claudegate::api_key
