// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/json.hpp"
#include "claudegate/jose/claims.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

using claudegate::Errc;
using claudegate::UnixSeconds;
using claudegate::json::Json;
namespace claims = claudegate::claims;

namespace {

constexpr UnixSeconds k_now = 1795428000; // 2026-11-23T10:00:00Z

// A claim set that passes the default policy at k_now.
Json good_claims() {
  return Json{{"iss", "claudegate"},
              {"sub", "alice"},
              {"aud", "claude-proxy"},
              {"iat", k_now - 10},
              {"nbf", k_now - 10},
              {"exp", k_now + 890},
              {"jti", "AAAAAAAAAAAAAAAAAAAAAA"},
              {"plan", "pro"},
              {"scope", "claude:messages claude:models"}};
}

claims::VerifyPolicy strict_policy() {
  claims::VerifyPolicy policy;
  policy.issuer = "claudegate";
  policy.audiences = {"claude-proxy"};
  return policy;
}

claudegate::Result<void> check(const Json& c, const claims::VerifyPolicy& policy = strict_policy(),
                               UnixSeconds now = k_now, std::string_view typ = "at+jwt") {
  return claims::check(typ, c, policy, now);
}

// The error code of `r`, or nullopt-like sentinel when it succeeded.
std::string code_of(const claudegate::Result<void>& r) {
  return r ? std::string("ok") : std::string(claudegate::errc_code(r.error().code));
}

std::string message_of(const claudegate::Result<void>& r) {
  return r ? std::string() : r.error().message;
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

Json with(Json c, const std::string& name, Json value) {
  c[name] = std::move(value);
  return c;
}

Json without(Json c, const std::string& name) {
  c.erase(name);
  return c;
}

} // namespace

TEST_CASE("claims: a well-formed token passes the strict policy") {
  CHECK(code_of(check(good_claims())) == "ok");
}

TEST_CASE("claims: exp is required") {
  const auto r = check(without(good_claims(), "exp"));
  CHECK(code_of(r) == "claim_mismatch");
  CHECK(contains(message_of(r), "exp"));
}

TEST_CASE("claims: now == exp + leeway is rejected, one second before is accepted") {
  auto policy = strict_policy();
  policy.leeway = 60;
  const auto c = with(good_claims(), "exp", k_now);
  CHECK(code_of(check(c, policy, k_now + 60)) == "expired");
  CHECK(code_of(check(c, policy, k_now + 59)) == "ok");
  policy.leeway = 0;
  CHECK(code_of(check(c, policy, k_now)) == "expired");
  CHECK(code_of(check(c, policy, k_now - 1)) == "ok");
}

TEST_CASE("claims: expired message names how long ago, when and the leeway") {
  const auto exp = k_now;
  const auto r = check(with(good_claims(), "exp", exp), strict_policy(), exp + 192);
  REQUIRE(code_of(r) == "expired");
  CHECK(contains(message_of(r), "3m12s ago"));
  CHECK(contains(message_of(r), "2026-11-23T10:00:00Z"));
  CHECK(contains(message_of(r), "leeway 60s"));
}

TEST_CASE("claims: fractional exp is honoured") {
  auto policy = strict_policy();
  policy.leeway = 0;
  const auto c = with(good_claims(), "exp", static_cast<double>(k_now) + 0.5);
  CHECK(code_of(check(c, policy, k_now)) == "ok");
  CHECK(code_of(check(c, policy, k_now + 1)) == "expired");
  const auto parsed = claudegate::json::parse_object(R"({"exp": 1795428000.25})");
  REQUIRE(parsed);
  policy.issuer.reset();
  policy.audiences.clear();
  CHECK(code_of(check(*parsed, policy, k_now)) == "ok");
}

TEST_CASE("claims: exp of the wrong type or insane value is malformed") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const Json bad[] = {"1795428900",
                      true,
                      nullptr,
                      Json::array({k_now}),
                      Json::object(),
                      nan,
                      inf,
                      -inf,
                      -1,
                      -0.5,
                      1e300,
                      253402300800.0,
                      std::numeric_limits<std::uint64_t>::max()};
  for (const auto& value : bad) {
    CAPTURE(value.dump());
    CHECK(code_of(check(with(good_claims(), "exp", value))) == "malformed");
  }
}

TEST_CASE("claims: the last second of year 9999 is still a sane exp") {
  claims::VerifyPolicy policy;
  policy.max_lifetime.reset();
  CHECK(code_of(check(with(good_claims(), "exp", 253402300799), policy)) == "ok");
}

TEST_CASE("claims: exp written as 1e400 never passes") {
  const auto parsed = claudegate::json::parse_object(R"({"exp": 1e400})");
  if (parsed) {
    CHECK(code_of(check(*parsed)) == "malformed");
  } else {
    CHECK(parsed.error().code == Errc::malformed);
  }
}

TEST_CASE("claims: nbf in the future beyond leeway is not yet valid") {
  CHECK(code_of(check(with(good_claims(), "nbf", k_now + 60))) == "ok");
  CHECK(code_of(check(with(good_claims(), "nbf", k_now + 61))) == "not_yet_valid");
  const auto r = check(with(good_claims(), "nbf", k_now + 300));
  REQUIRE(code_of(r) == "not_yet_valid");
  CHECK(contains(message_of(r), "not valid for another 5m"));
  CHECK(contains(message_of(r), "nbf 2026-11-23T10:05:00Z"));
  CHECK(contains(message_of(r), "leeway 60s"));
}

TEST_CASE("claims: iat in the future beyond leeway is not yet valid") {
  CHECK(code_of(check(with(good_claims(), "iat", k_now + 60))) == "ok");
  const auto r = check(with(good_claims(), "iat", k_now + 61));
  CHECK(code_of(r) == "not_yet_valid");
  CHECK(contains(message_of(r), "iat"));
}

TEST_CASE("claims: fractional nbf just beyond the leeway is rejected") {
  auto policy = strict_policy();
  policy.leeway = 0;
  CHECK(code_of(check(with(good_claims(), "nbf", static_cast<double>(k_now) + 0.5), policy))
        == "not_yet_valid");
  CHECK(code_of(check(with(good_claims(), "nbf", static_cast<double>(k_now)), policy)) == "ok");
}

TEST_CASE("claims: nbf and iat of the wrong type are malformed") {
  for (const char* name : {"nbf", "iat"}) {
    for (const Json& value : {Json("1795428000"), Json(false), Json(nullptr), Json(-5), Json(1e300)}) {
      CAPTURE(name);
      CAPTURE(value.dump());
      CHECK(code_of(check(with(good_claims(), name, value))) == "malformed");
    }
  }
}

TEST_CASE("claims: lifetime exp - iat above max_lifetime is a claim mismatch") {
  auto c = with(good_claims(), "iat", k_now);
  c["nbf"] = k_now;
  CHECK(code_of(check(with(c, "exp", k_now + 86400))) == "ok");
  const auto r = check(with(c, "exp", k_now + 86401));
  CHECK(code_of(r) == "claim_mismatch");
  CHECK(contains(message_of(r), "lifetime"));
  auto unbounded = strict_policy();
  unbounded.max_lifetime.reset();
  CHECK(code_of(check(with(c, "exp", k_now + 400 * 86400), unbounded)) == "ok");
}

TEST_CASE("claims: a token without iat cannot dodge the lifetime bound") {
  const auto c = without(good_claims(), "iat");
  CHECK(code_of(check(with(c, "exp", k_now + 86400 + 60))) == "ok");
  const auto r = check(with(c, "exp", k_now + 86400 + 61));
  CHECK(code_of(r) == "claim_mismatch");
  CHECK(contains(message_of(r), "without iat"));
}

TEST_CASE("claims: issuer must match exactly") {
  const auto r = check(with(good_claims(), "iss", "evil"));
  REQUIRE(code_of(r) == "claim_mismatch");
  CHECK(message_of(r) == R"(issuer mismatch: expected "claudegate", received "evil")");
  CHECK(code_of(check(with(good_claims(), "iss", "Claudegate"))) == "claim_mismatch");
  CHECK(code_of(check(with(good_claims(), "iss", "claudegate "))) == "claim_mismatch");
  CHECK(code_of(check(without(good_claims(), "iss"))) == "claim_mismatch");
  CHECK(code_of(check(with(good_claims(), "iss", 42))) == "malformed");
  claims::VerifyPolicy no_issuer;
  no_issuer.audiences = {"claude-proxy"};
  CHECK(code_of(check(with(good_claims(), "iss", "anyone"), no_issuer)) == "ok");
}

TEST_CASE("claims: audience as string or array, any-of, exact and case-sensitive") {
  auto policy = strict_policy();
  policy.audiences = {"claude-proxy", "other-api"};
  CHECK(code_of(check(with(good_claims(), "aud", "other-api"), policy)) == "ok");
  CHECK(code_of(check(with(good_claims(), "aud", Json::array({"x", "claude-proxy"})), policy)) == "ok");
  CHECK(code_of(check(with(good_claims(), "aud", "Claude-Proxy"), policy)) == "claim_mismatch");
  CHECK(code_of(check(with(good_claims(), "aud", "claude-proxy/"), policy)) == "claim_mismatch");
  CHECK(code_of(check(with(good_claims(), "aud", Json::array({"x", "y"})), policy)) == "claim_mismatch");
  CHECK(code_of(check(without(good_claims(), "aud"), policy)) == "claim_mismatch");
}

TEST_CASE("claims: audience mismatch lists expected and received") {
  const auto r = check(with(good_claims(), "aud", Json::array({"a", "b"})));
  REQUIRE(code_of(r) == "claim_mismatch");
  CHECK(contains(message_of(r), R"(["claude-proxy"])"));
  CHECK(contains(message_of(r), R"(["a","b"])"));
}

TEST_CASE("claims: an empty audience array matches nothing") {
  CHECK(code_of(check(with(good_claims(), "aud", Json::array()))) == "claim_mismatch");
  claims::VerifyPolicy no_audience;
  CHECK(code_of(check(with(good_claims(), "aud", Json::array()), no_audience)) == "ok");
}

TEST_CASE("claims: audience arrays with non-strings and other types are malformed") {
  const Json bad[] = {Json::array({"claude-proxy", 1}),
                      Json::array({Json::array({"claude-proxy"})}),
                      Json::array({nullptr}),
                      7,
                      true,
                      Json::object({{"aud", "claude-proxy"}})};
  for (const auto& value : bad) {
    CAPTURE(value.dump());
    CHECK(code_of(check(with(good_claims(), "aud", value))) == "malformed");
  }
}

TEST_CASE("claims: typ must be one of the allowed, case-sensitive") {
  CHECK(code_of(check(good_claims(), strict_policy(), k_now, "at+jwt")) == "ok");
  CHECK(code_of(check(good_claims(), strict_policy(), k_now, "JWT")) == "ok");
  for (std::string_view typ : {"jwt", "AT+JWT", "at+JWT", "", "application/at+jwt", "JWS"}) {
    CAPTURE(typ);
    CHECK(code_of(check(good_claims(), strict_policy(), k_now, typ)) == "claim_mismatch");
  }
  const auto r = check(good_claims(), strict_policy(), k_now, "jwt");
  CHECK(contains(message_of(r), R"("at+jwt")"));
  CHECK(contains(message_of(r), R"("jwt")"));
  CHECK(contains(message_of(check(good_claims(), strict_policy(), k_now, "")), "no typ"));
}

TEST_CASE("claims: an empty typ list disables the typ check, a custom list is honoured") {
  auto policy = strict_policy();
  policy.allowed_typs.clear();
  CHECK(code_of(check(good_claims(), policy, k_now, "")) == "ok");
  CHECK(code_of(check(good_claims(), policy, k_now, "anything")) == "ok");
  policy.allowed_typs = {"JWT"};
  CHECK(code_of(check(good_claims(), policy, k_now, "JWT")) == "ok");
  CHECK(code_of(check(good_claims(), policy, k_now, "at+jwt")) == "claim_mismatch");
}

TEST_CASE("claims: required scopes must each be in the scope claim") {
  auto policy = strict_policy();
  policy.required_scopes = {"claude:models", "claude:messages"};
  CHECK(code_of(check(good_claims(), policy)) == "ok");
  policy.required_scopes = {"claude:admin"};
  const auto r = check(good_claims(), policy);
  REQUIRE(code_of(r) == "claim_mismatch");
  CHECK(contains(message_of(r), R"("claude:admin")"));
  CHECK(contains(message_of(r), R"("claude:messages claude:models")"));
  policy.required_scopes = {"claude:message"}; // a prefix is not a scope
  CHECK(code_of(check(good_claims(), policy)) == "claim_mismatch");
  policy.required_scopes = {"claude:messages"};
  CHECK(code_of(check(without(good_claims(), "scope"), policy)) == "claim_mismatch");
  CHECK(code_of(check(with(good_claims(), "scope", Json::array({"claude:messages"})), policy))
        == "malformed");
}

TEST_CASE("claims: required claims must be present") {
  auto policy = strict_policy();
  policy.required_claims = {"sub", "jti"};
  CHECK(code_of(check(good_claims(), policy)) == "ok");
  const auto r = check(without(good_claims(), "jti"), policy);
  CHECK(code_of(r) == "claim_mismatch");
  CHECK(contains(message_of(r), R"("jti")"));
  policy.required_claims = {"email"};
  CHECK(code_of(check(good_claims(), policy)) == "claim_mismatch");
}

TEST_CASE("claims: registered claims of the wrong type are malformed") {
  const std::pair<const char*, Json> bad[] = {
      {"sub", 42},
      {"jti", Json::array({"x"})},
      {"plan", Json::array({"pro"})},
      {"roles", "admin"},
      {"roles", Json::array({1})},
      {"daily_token_limit", -1},
      {"daily_token_limit", 1.5},
      {"daily_token_limit", "100"},
      {"fid", 7},
      {"scope", 1},
  };
  for (const auto& [name, value] : bad) {
    CAPTURE(name);
    CAPTURE(value.dump());
    const auto r = check(with(good_claims(), name, value));
    CHECK(code_of(r) == "malformed");
    CHECK(contains(message_of(r), name));
  }
}

TEST_CASE("claims: claudegate's own claims of the right type pass") {
  auto c = with(good_claims(), "roles", Json::array({"admin", "dev"}));
  c["daily_token_limit"] = std::int64_t{50000};
  c["fid"] = "family-1";
  CHECK(code_of(check(c)) == "ok");
  CHECK(code_of(check(with(c, "daily_token_limit", 0))) == "ok");
}

TEST_CASE("claims: claims that are not an object are malformed") {
  CHECK(code_of(check(Json::array())) == "malformed");
  CHECK(code_of(check(Json("claims"))) == "malformed");
}

TEST_CASE("claims: a negative leeway is a configuration error") {
  auto policy = strict_policy();
  policy.leeway = -1;
  CHECK(code_of(check(good_claims(), policy)) == "config");
}

TEST_CASE("claims: attacker-controlled values are escaped and shortened in messages") {
  const auto r = check(with(good_claims(), "iss", std::string("evil\n") + std::string(500, 'x')));
  REQUIRE(code_of(r) == "claim_mismatch");
  CHECK_FALSE(contains(message_of(r), "\n"));
  CHECK(message_of(r).size() < 200);
}

TEST_CASE("claims: registered_names covers RFC 7519 and claudegate's own claims") {
  const auto& names = claims::registered_names();
  for (const char* name : {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "plan", "scope", "roles",
                           "daily_token_limit", "fid"}) {
    CAPTURE(name);
    CHECK(std::find(names.begin(), names.end(), name) != names.end());
  }
  CHECK(std::find(names.begin(), names.end(), "team") == names.end());
}

TEST_CASE("claims: split_scope splits on spaces and drops empty pieces") {
  using V = std::vector<std::string>;
  CHECK(claims::split_scope("claude:messages claude:models") == V{"claude:messages", "claude:models"});
  CHECK(claims::split_scope("  a   b ") == V{"a", "b"});
  CHECK(claims::split_scope("") == V{});
  CHECK(claims::split_scope("   ") == V{});
  CHECK(claims::split_scope("single") == V{"single"});
}
