// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/api_key.hpp"

#include "claudegate/base/duration.hpp"
#include "claudegate/jose/base64url.hpp"
#include "claudegate/jose/digest.hpp"
#include "claudegate/store/grant.hpp"
#include "claudegate/store/refresh.hpp"
#include "claudegate/store/revocation.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <utility>

namespace claudegate::api_key {

namespace {

constexpr std::size_t k_secret_bytes = 32; // 256 random bits
constexpr std::string_view k_hex_digits = "0123456789abcdef";

std::string hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char byte : bytes) {
    const auto value = static_cast<unsigned char>(byte);
    out += k_hex_digits[value >> 4U];
    out += k_hex_digits[value & 0x0fU];
  }
  return out;
}

bool is_id(std::string_view text) {
  return text.size() == k_id_length && std::all_of(text.begin(), text.end(), [](char c) {
           return k_hex_digits.find(c) != std::string_view::npos;
         });
}

Error malformed() {
  return {Errc::malformed,
          fmt::format("not a claudegate API key (expected {} + {} lowercase hex digits + _ + {} base64url "
                      "characters); use the key exactly as `claudegate issue --api-key` printed it",
                      k_prefix, k_id_length, k_secret_length)};
}

} // namespace

MintedKey mint(RandomSource& rng) {
  Parts parts{hex(rng.bytes(k_id_length / 2)), base64url::encode(rng.bytes(k_secret_bytes))};
  std::string key = fmt::format("{}{}_{}", k_prefix, parts.id, parts.secret);
  return {std::move(parts), std::move(key)};
}

bool looks_like_key(std::string_view presented) {
  return presented.starts_with(k_prefix);
}

Result<Parts> parse(std::string_view presented) {
  if (!looks_like_key(presented)) {
    return std::unexpected(malformed());
  }
  const std::string_view rest = presented.substr(k_prefix.size());
  const auto separator = rest.find('_');
  if (separator == std::string_view::npos) {
    return std::unexpected(malformed());
  }
  const std::string_view id = rest.substr(0, separator);
  const std::string_view secret = rest.substr(separator + 1);
  if (!is_id(id) || secret.size() != k_secret_length || !base64url::decode(secret)) {
    return std::unexpected(malformed());
  }
  return Parts{std::string(id), std::string(secret)};
}

// SHA-256 without a slow KDF (bcrypt, Argon2) is the right tool here: a
// slow hash protects low-entropy secrets that people choose, where an
// attacker with the hashes can try likely guesses. This secret is 256
// uniformly random bits, so there are no likely guesses: inverting or
// brute-forcing one SHA-256 of it is infeasible at any speed, and a fast
// hash keeps per-request authentication cheap. Refresh tokens are stored
// the same way.
Result<std::string> hash_secret(std::string_view secret) {
  return refresh::hash(secret);
}

Result<store::ApiKeyRecord> new_record(const MintedKey& minted, const token::AccessTokenRequest& request,
                                       std::string name, std::int64_t ttl, UnixSeconds now) {
  if (request.subject.empty()) {
    return fail(Errc::config, "an API key needs a subject (--sub)");
  }
  if (ttl <= 0) {
    return fail(Errc::config, fmt::format("an API key's lifetime must be positive, got {}s", ttl));
  }
  auto hashed = hash_secret(minted.parts.secret);
  if (!hashed) {
    return propagate(hashed);
  }
  store::ApiKeyRecord record;
  record.id = minted.parts.id;
  record.name = std::move(name);
  record.subject = request.subject;
  record.grant = grant::to_json(request);
  record.secret_hash = std::move(*hashed);
  record.created_at = now;
  record.expires_at = now + ttl;
  return record;
}

std::string_view state_of(const store::ApiKeyRecord& key, UnixSeconds now) {
  if (key.revoked_at) {
    return "revoked";
  }
  if (now >= key.expires_at) {
    return "expired";
  }
  if (key.retires_at) {
    return now >= *key.retires_at ? "retired" : "retiring";
  }
  return "active";
}

json::Json summary_json(const store::ApiKeyRecord& key, UnixSeconds now) {
  const auto time = [](std::optional<UnixSeconds> t) {
    return t ? json::Json(duration::format_time(*t)) : json::Json(nullptr);
  };
  const auto member = [&](const char* name) {
    return key.grant.is_object() ? key.grant.value(name, json::Json()) : json::Json();
  };
  return {{"id", key.id},
          {"name", key.name},
          {"sub", key.subject},
          {"plan", member("plan")},
          {"scope", member("scope")},
          {"roles", member("roles")},
          {"created_at", time(key.created_at)},
          {"expires_at", time(key.expires_at)},
          {"last_used_at", time(key.last_used_at)},
          {"revoked_at", time(key.revoked_at)},
          {"retires_at", time(key.retires_at)},
          {"rotated_from", key.rotated_from ? json::Json(*key.rotated_from) : json::Json(nullptr)},
          {"state", state_of(key, now)}};
}

Result<void> check_usable(const store::ApiKeyRecord& record, UnixSeconds now) {
  if (record.revoked_at) {
    return fail(Errc::revoked, fmt::format("API key {} was revoked at {}", record.id,
                                           duration::format_time(*record.revoked_at)));
  }
  if (now >= record.expires_at) {
    return fail(Errc::expired, fmt::format("API key {} expired at {} ({} ago); issue a new key", record.id,
                                           duration::format_time(record.expires_at),
                                           duration::format(now - record.expires_at)));
  }
  if (record.retires_at && now >= *record.retires_at) {
    return fail(Errc::revoked,
                fmt::format("API key {} was rotated and stopped working at {} (end of its overlap); use "
                            "its replacement",
                            record.id, duration::format_time(*record.retires_at)));
  }
  return {};
}

bool secret_matches(const store::ApiKeyRecord& record, std::string_view secret) {
  auto hashed = hash_secret(secret);
  return hashed && digest::equal(*hashed, record.secret_hash);
}

Result<store::ApiKeyRecord> authenticate(store::ApiKeyStore& keys, std::string_view presented,
                                         UnixSeconds now) {
  auto parts = parse(presented);
  if (!parts) {
    return propagate(parts);
  }
  auto found = keys.find_api_key(parts->id);
  if (!found) {
    return propagate(found);
  }
  if (!*found) {
    return fail(Errc::unknown_key, fmt::format("unknown API key {}", parts->id));
  }
  if (!secret_matches(**found, parts->secret)) {
    return fail(Errc::bad_signature, fmt::format("wrong secret for API key {}", parts->id));
  }
  if (auto usable = check_usable(**found, now); !usable) {
    return propagate(usable);
  }
  return std::move(**found);
}

Result<store::ApiKeyRecord> authenticate(store::Store& store, std::string_view presented, UnixSeconds now) {
  auto key = authenticate(static_cast<store::ApiKeyStore&>(store), presented, now);
  if (!key) {
    return key;
  }
  token::VerifiedToken as_token;
  as_token.claims = {{"jti", key->id}, {"sub", key->subject}, {"iat", key->created_at}};
  if (auto unrevoked = revocation::check(store, as_token); !unrevoked) {
    const auto& error = unrevoked.error();
    return std::unexpected(Error{error.code, fmt::format("API key {}: {}", key->id, error.message)});
  }
  return key;
}

Result<token::VerifiedToken> token_of(const store::ApiKeyRecord& key) {
  auto request = grant::from_json(key.grant, "API key " + key.id);
  if (!request) {
    return propagate(request);
  }
  json::Json claims = request->extra_claims.is_object() ? request->extra_claims : json::Json::object();
  claims["iss"] = request->issuer;
  claims["aud"] = request->audience;
  claims["sub"] = request->subject;
  claims["plan"] = request->plan;
  claims["scope"] = request->scope;
  claims["jti"] = key.id;
  claims["iat"] = key.created_at;
  claims["exp"] = key.expires_at;
  if (!request->roles.empty()) {
    claims["roles"] = request->roles;
  }
  if (request->daily_token_limit) {
    claims["daily_token_limit"] = *request->daily_token_limit;
  }
  return token::VerifiedToken{json::Json{{"typ", "api_key"}}, std::move(claims), key.id};
}

} // namespace claudegate::api_key
