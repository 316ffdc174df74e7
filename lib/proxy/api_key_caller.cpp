// SPDX-License-Identifier: Apache-2.0
#include "api_key_caller.hpp"

#include "claudegate/store/grant.hpp"

namespace claudegate::proxy {

Result<token::VerifiedToken> token_of_key(const store::ApiKeyRecord& key) {
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

Result<token::VerifiedToken> verify_api_key(api_key::KeyCache& cache, store::Store& store,
                                            std::string_view presented, UnixSeconds now) {
  auto key = cache.authenticate(store, presented, now);
  if (!key) {
    return propagate(key);
  }
  return token_of_key(*key);
}

} // namespace claudegate::proxy
