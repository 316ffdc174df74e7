// SPDX-License-Identifier: Apache-2.0
#include "proxy/oauth_request.hpp"

#include "claudegate/base/json.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace claudegate;
using namespace claudegate::proxy::oauth;

namespace {

constexpr std::string_view k_form = "application/x-www-form-urlencoded";

// "Basic " + base64("id:secret") as a client would send it.
std::string basic(std::string_view base64) {
  return "Basic " + std::string(base64);
}

} // namespace

TEST_CASE("parse_form decodes + and %XX and refuses repeats and bad escapes") {
  auto form = parse_form("a=1+2&b=%7e%2B&c=&&d=x%3Dy");
  REQUIRE(form);
  CHECK(form->at("a") == "1 2");
  CHECK(form->at("b") == "~+");
  CHECK(form->at("c").empty());
  CHECK(form->at("d") == "x=y");
  CHECK(form->size() == 4);

  auto repeated = parse_form("scope=a&scope=b");
  REQUIRE_FALSE(repeated);
  CHECK(repeated.error().error == "invalid_request");
  CHECK(repeated.error().description.find("scope") != std::string::npos);

  CHECK_FALSE(parse_form("a=%zz"));
  CHECK_FALSE(parse_form("a=%4"));
  CHECK_FALSE(parse_form("novalue"));
}

TEST_CASE("parse_token_request reads form credentials, grant type and scope") {
  auto request =
      parse_token_request("application/x-www-form-urlencoded; charset=utf-8",
                          "grant_type=client_credentials&client_id=k1&client_secret=cgk_k1_s&scope=a", "");
  REQUIRE(request);
  CHECK(request->client.client_id == "k1");
  CHECK(request->client.client_secret == "cgk_k1_s");
  CHECK_FALSE(request->client.basic);
  REQUIRE(request->scope);
  CHECK(*request->scope == "a");
}

TEST_CASE("parse_token_request reads HTTP Basic with form-encoded id and secret") {
  // base64("k%2F1:cgk_k1_s") — the id is form-encoded before Basic (RFC 6749 §2.3.1).
  auto request = parse_token_request(k_form, "grant_type=client_credentials", basic("ayUyRjE6Y2drX2sxX3M="));
  REQUIRE(request);
  CHECK(request->client.client_id == "k/1");
  CHECK(request->client.client_secret == "cgk_k1_s");
  CHECK(request->client.basic);
  CHECK_FALSE(request->scope);
}

TEST_CASE("parse_token_request errors are RFC 6749 §5.2's") {
  const auto error_of = [](std::string_view type, std::string_view body, std::string_view auth) {
    auto request = parse_token_request(type, body, auth);
    REQUIRE_FALSE(request);
    return request.error();
  };
  CHECK(error_of("application/json", "{}", "").error == "invalid_request");
  CHECK(error_of(k_form, "client_id=a&client_secret=b", "").error == "invalid_request");
  const auto grant = error_of(k_form, "grant_type=password&client_id=a&client_secret=b", "");
  CHECK(grant.error == "unsupported_grant_type");
  CHECK(grant.status == 400);
  const auto none = error_of(k_form, "grant_type=client_credentials", "");
  CHECK(none.error == "invalid_client");
  CHECK(none.status == 401);
  CHECK(error_of(k_form, "grant_type=client_credentials&client_id=a", "").error == "invalid_client");
  CHECK(error_of(k_form, "grant_type=client_credentials&client_id=a&client_secret=b", basic("YTpi")).error
        == "invalid_request");
  CHECK(error_of(k_form, "grant_type=client_credentials", "Bearer x").error == "invalid_client");
  CHECK(error_of(k_form, "grant_type=client_credentials", basic("bm9jb2xvbg==")).error == "invalid_client");
  CHECK(error_of(k_form, "grant_type=client_credentials", basic("YTpi*")).error == "invalid_client");
}

TEST_CASE("narrow_scope narrows, never widens") {
  CHECK(narrow_scope("claude:messages claude:models", std::nullopt) == "claude:messages claude:models");
  CHECK(narrow_scope("claude:messages claude:models", "claude:models") == "claude:models");
  CHECK(narrow_scope("a b", "b a b") == "b a");
  auto wider = narrow_scope("claude:messages", "claude:messages admin");
  REQUIRE_FALSE(wider);
  CHECK(wider.error().error == "invalid_scope");
  CHECK(wider.error().description.find("admin") != std::string::npos);
  CHECK_FALSE(narrow_scope("a", "  "));
}

TEST_CASE("error and token bodies") {
  const auto error = json::Json::parse(error_body(invalid_client("bad \xff secret")));
  CHECK(error["error"] == "invalid_client");
  CHECK(error["error_description"].get<std::string>().starts_with("bad "));
  const auto token = json::Json::parse(token_body("eyJ", 900, "claude:messages"));
  CHECK(token
        == json::Json{{"access_token", "eyJ"},
                      {"token_type", "Bearer"},
                      {"expires_in", 900},
                      {"scope", "claude:messages"}});
}
