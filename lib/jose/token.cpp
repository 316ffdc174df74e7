// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/token.hpp"

#include "claudegate/jose/base64url.hpp"
#include "claudegate/jose/jws.hpp"
#include "claudegate/jose/signature.hpp"

#include <algorithm>

namespace claudegate::token {

namespace {

constexpr std::size_t k_jti_bytes = 16;         // 128 random bits (DESIGN.md §4)
constexpr UnixSeconds k_max_exp = 253402300799; // 9999-12-31T23:59:59Z, as claims::check
using json::quote;

Result<const keys::Key*> find_key(const jws::DecodedToken& decoded, const keyset::KeySet& keys) {
  if (!decoded.header.contains("kid")) {
    return fail(Errc::unknown_key, "token has no kid; keys are chosen by kid only");
  }
  if (decoded.kid.empty()) {
    return fail(Errc::unknown_key, "token has an empty kid; keys are chosen by kid only");
  }
  const keys::Key* key = keys.find(decoded.kid);
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

// Collects the claims as a document, as IssuedAccessToken hands them back
// (the same calls as ClaimsWriter, from write_claims).
class ClaimsDocument {
public:
  void string(std::string_view name, std::string_view value) { m_members.emplace(name, value); }
  void integer(std::string_view name, std::int64_t value) { m_members.emplace(name, value); }
  void strings(std::string_view name, const std::vector<std::string>& values) {
    m_members.emplace(name, values);
  }
  void any(std::string_view name, const json::Json& value) { m_members.emplace(name, value); }

  json::Json finish() { return std::move(m_document); }

private:
  json::Json m_document = json::Json::object();
  json::Json::object_t& m_members = m_document.get_ref<json::Json::object_t&>();
};

// Writes the claims as JSON text member by member (json::ObjectWriter);
// `valid()` turns false on invalid UTF-8 in a string.
class ClaimsWriter {
public:
  ClaimsWriter() { m_out.reserve(k_typical_bytes); }

  void string(std::string_view name, std::string_view value) { m_object.string(name, value); }
  void integer(std::string_view name, std::int64_t value) { m_object.integer(name, value); }
  void strings(std::string_view name, const std::vector<std::string>& values) {
    m_object.strings(name, values);
  }
  // A custom claim, written as nlohmann's dump() (strict: throws on invalid UTF-8).
  void any(std::string_view name, const json::Json& value) { m_object.value(name, value); }

  bool valid() const { return m_object.valid(); }

  std::string finish() {
    m_object.close();
    return std::move(m_out);
  }

private:
  static constexpr std::size_t k_typical_bytes = 256;
  std::string m_out;
  json::ObjectWriter m_object{m_out};
};

// The registered claims in the order we mint them, then the custom ones,
// into `writer` (a ClaimsWriter for the token, a ClaimsDocument for the caller).
template <typename Writer>
void write_claims(Writer& writer, const AccessTokenRequest& request, UnixSeconds now, std::string_view jti) {
  writer.string("iss", request.issuer);
  writer.string("sub", request.subject);
  writer.string("aud", request.audience);
  writer.integer("iat", now);
  writer.integer("nbf", now);
  writer.integer("exp", now + request.ttl);
  writer.string("jti", jti);
  writer.string("plan", request.plan);
  writer.string("scope", request.scope);
  if (!request.roles.empty()) {
    writer.strings("roles", request.roles);
  }
  if (request.daily_token_limit) {
    writer.integer("daily_token_limit", *request.daily_token_limit);
  }
  if (request.family_id) {
    writer.string("fid", *request.family_id);
  }
  for (const auto& [name, value] : request.extra_claims.items()) {
    writer.any(name, value);
  }
}

// The claims as a document, as IssuedAccessToken hands them back.
json::Json claims_document(const AccessTokenRequest& request, UnixSeconds now, std::string_view jti) {
  ClaimsDocument document;
  write_claims(document, request, now, jti);
  return document.finish();
}

// The compact claims JSON. Strict: invalid UTF-8 in a claim is the caller's
// error, not something to replace silently. Fails with config.
Result<std::string> claims_text(const AccessTokenRequest& request, UnixSeconds now, std::string_view jti) {
  ClaimsWriter writer;
  try {
    write_claims(writer, request, now, jti);
  } catch (const json::Json::exception& e) {
    return fail(Errc::config, std::string("claims cannot be serialized: ") + e.what());
  }
  if (!writer.valid()) {
    return fail(Errc::config, "claims cannot be serialized: a claim holds invalid UTF-8");
  }
  return writer.finish();
}

// {"alg":…,"typ":"at+jwt","kid":…}: built from the signer itself, so it
// meets decode's header rules by construction and is not parsed back as
// jws::sign_serialized would; signature::sign still checks the alg binding.
Result<std::string> access_header_text(const keys::Key& signer) {
  std::string out;
  json::ObjectWriter header(out);
  header.string("alg", alg_name(signer.alg()));
  header.string("typ", "at+jwt");
  header.string("kid", signer.kid());
  header.close();
  if (!header.valid()) {
    return fail(Errc::config, "the signing key's kid is not valid UTF-8");
  }
  return out;
}

Result<std::string> sign_compact(std::string_view header_json, std::string_view claims_json,
                                 const keys::Key& signer) {
  std::string out;
  out.reserve((header_json.size() + claims_json.size() + signer.signature_size()) * 4 / 3 + 8);
  out.append(base64url::encode(header_json)).append(".").append(base64url::encode(claims_json));
  const auto sig = signature::sign(signer.alg(), signer, out);
  if (!sig) {
    return propagate(sig);
  }
  out.append(".").append(base64url::encode(*sig));
  return out;
}

Result<std::string> sign_access_token(std::string_view claims_json, const keys::Key& signer) {
  const auto header = access_header_text(signer);
  if (!header) {
    return header;
  }
  auto token = sign_compact(*header, claims_json, signer);
  // Never hand out a token that our own verifier would refuse for its size.
  if (token && token->size() > jws::k_max_token_bytes) {
    return fail(Errc::config, "token would be " + std::to_string(token->size()) + " bytes, over the "
                                  + std::to_string(jws::k_max_token_bytes)
                                  + "-byte limit; use fewer or smaller claims");
  }
  return token;
}

} // namespace

Result<VerifiedToken> verify(std::string_view token, const keyset::KeySet& keys,
                             const claims::VerifyPolicy& policy, UnixSeconds now) {
  auto decoded = jws::decode(token);
  if (!decoded) {
    return propagate(decoded);
  }
  const auto key = find_key(*decoded, keys);
  if (!key) {
    return propagate(key);
  }
  if (auto r = jws::verify_signature(*decoded, **key); !r) {
    return propagate(r);
  }
  // Claims only after the signature: unauthenticated data never reaches policy.
  if (auto r = claims::check(decoded->typ, decoded->payload, policy, now); !r) {
    return propagate(r);
  }
  return VerifiedToken{std::move(decoded->header), std::move(decoded->payload), decoded->kid, decoded->alg};
}

Result<IssuedAccessToken> issue(const AccessTokenRequest& request, const keys::Key& signer, UnixSeconds now,
                                RandomSource& rng) {
  if (auto r = check_request(request, now); !r) {
    return propagate(r);
  }
  if (auto r = check_extra_claims(request.extra_claims); !r) {
    return propagate(r);
  }
  auto jti = base64url::encode(rng.bytes(k_jti_bytes));
  const auto claims = claims_text(request, now, jti);
  if (!claims) {
    return propagate(claims);
  }
  auto token = sign_access_token(*claims, signer);
  if (!token) {
    return propagate(token);
  }
  return IssuedAccessToken{
      std::move(*token), jti, signer.kid(), now, now + request.ttl, claims_document(request, now, jti)};
}

} // namespace claudegate::token
