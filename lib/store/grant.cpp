// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/grant.hpp"

#include <fmt/core.h>

namespace claudegate::grant {

json::Json to_json(const token::AccessTokenRequest& request) {
  json::Json grant = {{"sub", request.subject}, {"plan", request.plan},          {"scope", request.scope},
                      {"roles", request.roles}, {"extra", request.extra_claims}, {"ttl", request.ttl},
                      {"iss", request.issuer},  {"aud", request.audience}};
  if (request.daily_token_limit) {
    grant["daily_token_limit"] = *request.daily_token_limit;
  }
  return grant;
}

Result<token::AccessTokenRequest> from_json(const json::Json& grant, std::string_view owner) {
  try {
    token::AccessTokenRequest request;
    request.subject = grant.at("sub").get<std::string>();
    request.plan = grant.at("plan").get<std::string>();
    request.scope = grant.at("scope").get<std::string>();
    request.roles = grant.at("roles").get<std::vector<std::string>>();
    request.extra_claims = grant.at("extra");
    request.ttl = grant.at("ttl").get<std::int64_t>();
    request.issuer = grant.at("iss").get<std::string>();
    request.audience = grant.at("aud").get<std::string>();
    if (grant.contains("daily_token_limit")) {
      request.daily_token_limit = grant.at("daily_token_limit").get<std::int64_t>();
    }
    return request;
  } catch (const json::Json::exception& e) {
    return fail(Errc::storage, fmt::format("{} has an unreadable grant ({})", owner, e.what()));
  }
}

} // namespace claudegate::grant
