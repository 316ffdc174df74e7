// SPDX-License-Identifier: Apache-2.0
#include "claudegate/token.hpp"

#include "claudegate/base64url.hpp"
#include "claudegate/jws.hpp"
#include "claudegate/signature.hpp"

#include <algorithm>

namespace claudegate::token {

namespace {

// nlohmann::json sorts members; ordered_json keeps the order we mint in.
using OrderedJson = nlohmann::ordered_json;

constexpr std::size_t k_jti_bytes = 16;         // 128 random bits (SPEC §3)
constexpr UnixSeconds k_max_exp = 253402300799; // 9999-12-31T23:59:59Z, as claims::check
using json::quote;

Result<const Key*> find_key(const jws::DecodedToken& decoded, const KeySet& keys) {
  if (!decoded.header.contains("kid")) {
    return fail(Errc::unknown_key, "token has no kid; keys are chosen by kid only");
  }
  if (decoded.kid.empty()) {
    return fail(Errc::unknown_key, "token has an empty kid; keys are chosen by kid only");
  }
  const Key* key = keys.find(decoded.kid);
  if (key == nullptr) {
    return fail(Errc::unknown_key, "unknown kid " + quote(decoded.kid) + ": no such key in the key set");
  }
  return key;
}

Result<void> check_request(const AccessTokenRequest& request, UnixSeconds now) {
  if (request.subject.empty()) {
    return fail(Errc::config, "subject must not be empty");
  }
  if (request.issuer.empty() || request.audience.empty()) {
    return fail(Errc::config, "issuer and audience must not be empty");
  }
  if (request.ttl <= 0 || now < 0 || request.ttl > k_max_exp - std::min(now, k_max_exp)) {
    return fail(Errc::config,
                "ttl must be positive and end before year 10000, got " + std::to_string(request.ttl) + "s");
  }
  if (request.daily_token_limit && *request.daily_token_limit < 0) {
    return fail(Errc::config, "daily_token_limit must not be negative");
  }
  if (!request.extra_claims.is_object()) {
    return fail(Errc::config, "extra claims must be a JSON object");
  }
  return {};
}

// Registered names carry meaning for the gateway; a custom claim may not replace one.
Result<void> check_extra_claims(const json::Json& extra) {
  const auto& registered = claims::registered_names();
  for (const auto& [name, value] : extra.items()) {
    if (std::find(registered.begin(), registered.end(), name) != registered.end()) {
      return fail(Errc::config,
                  "claim " + quote(name) + " is registered and cannot be set as a custom claim");
    }
  }
  return {};
}

OrderedJson access_claims(const AccessTokenRequest& request, UnixSeconds now, const std::string& jti) {
  OrderedJson out = {{"iss", request.issuer},
                     {"sub", request.subject},
                     {"aud", request.audience},
                     {"iat", now},
                     {"nbf", now},
                     {"exp", now + request.ttl},
                     {"jti", jti},
                     {"plan", request.plan},
                     {"scope", request.scope}};
  if (!request.roles.empty()) {
    out["roles"] = request.roles;
  }
  if (request.daily_token_limit) {
    out["daily_token_limit"] = *request.daily_token_limit;
  }
  if (request.family_id) {
    out["fid"] = *request.family_id;
  }
  for (const auto& [name, value] : request.extra_claims.items()) {
    out[name] = OrderedJson(value);
  }
  return out;
}

// Strict dump: invalid UTF-8 in a claim is the caller's error, not something to replace silently.
Result<std::string> dump(const OrderedJson& value) {
  try {
    return value.dump();
  } catch (const OrderedJson::exception& e) {
    return fail(Errc::config, std::string("claims cannot be serialized: ") + e.what());
  }
}

// The header is built from the signer itself ({alg, typ, kid}), so it meets
// decode's header rules by construction and is not parsed back as
// jws::sign_serialized would; signature::sign still checks the alg binding.
Result<std::string> sign_compact(std::string_view header_json, std::string_view claims_json,
                                 const Key& signer) {
  auto out = base64url::encode(header_json);
  out.append(".").append(base64url::encode(claims_json));
  const auto sig = signature::sign(signer.alg(), signer, out);
  if (!sig) {
    return std::unexpected(sig.error());
  }
  out.append(".").append(base64url::encode(*sig));
  return out;
}

Result<std::string> sign_access_token(const OrderedJson& claims, const Key& signer) {
  const OrderedJson header = {
      {"alg", std::string(alg_name(signer.alg()))}, {"typ", "at+jwt"}, {"kid", signer.kid()}};
  const auto header_text = dump(header);
  if (!header_text) {
    return header_text;
  }
  const auto claims_text = dump(claims);
  if (!claims_text) {
    return claims_text;
  }
  auto token = sign_compact(*header_text, *claims_text, signer);
  // Never hand out a token that our own verifier would refuse for its size.
  if (token && token->size() > jws::k_max_token_bytes) {
    return fail(Errc::config, "token would be " + std::to_string(token->size()) + " bytes, over the "
                                  + std::to_string(jws::k_max_token_bytes)
                                  + "-byte limit; use fewer or smaller claims");
  }
  return token;
}

} // namespace

Result<VerifiedToken> verify(std::string_view token, const KeySet& keys, const claims::VerifyPolicy& policy,
                             UnixSeconds now) {
  auto decoded = jws::decode(token);
  if (!decoded) {
    return std::unexpected(decoded.error());
  }
  const auto key = find_key(*decoded, keys);
  if (!key) {
    return std::unexpected(key.error());
  }
  if (auto r = jws::verify_signature(*decoded, **key); !r) {
    return std::unexpected(r.error());
  }
  // Claims only after the signature: unauthenticated data never reaches policy.
  if (auto r = claims::check(decoded->typ, decoded->payload, policy, now); !r) {
    return std::unexpected(r.error());
  }
  return VerifiedToken{std::move(decoded->header), std::move(decoded->payload), decoded->kid, decoded->alg};
}

Result<IssuedAccessToken> issue(const AccessTokenRequest& request, const Key& signer, UnixSeconds now,
                                RandomSource& rng) {
  if (auto r = check_request(request, now); !r) {
    return std::unexpected(r.error());
  }
  if (auto r = check_extra_claims(request.extra_claims); !r) {
    return std::unexpected(r.error());
  }
  auto jti = base64url::encode(rng.bytes(k_jti_bytes));
  const auto claims = access_claims(request, now, jti);
  auto token = sign_access_token(claims, signer);
  if (!token) {
    return std::unexpected(token.error());
  }
  return IssuedAccessToken{std::move(*token), std::move(jti),    signer.kid(), now,
                           now + request.ttl, json::Json(claims)};
}

} // namespace claudegate::token
