// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/token.hpp"

#include "claudegate/jose/jws.hpp"
#include "jose_support.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <optional>
#include <set>
#include <string>

using namespace claudegate;
using namespace claudegate::test;

namespace {

constexpr UnixSeconds k_now = 1795428000; // 2026-11-23T10:00:00Z

claims::VerifyPolicy default_policy() {
  claims::VerifyPolicy policy;
  policy.issuer = "claudegate";
  policy.audiences = {"claude-proxy"};
  return policy;
}

token::AccessTokenRequest alice() {
  token::AccessTokenRequest request;
  request.subject = "alice";
  return request;
}

// Public keys only, as a verifier holds them (HS256 keeps its secret).
keyset::KeySet verifier_keys(std::initializer_list<keys::Alg> algs) {
  keyset::KeySet keys;
  for (const auto alg : algs) {
    auto public_key = cached_key(alg).public_only();
    REQUIRE(public_key);
    keys.add(std::move(*public_key));
  }
  return keys;
}

std::string issue_for(const keys::Key& key, const token::AccessTokenRequest& request = alice(),
                      UnixSeconds now = k_now) {
  SystemRandom rng;
  auto issued = token::issue(request, key, now, rng);
  REQUIRE_MESSAGE(issued, message_of(issued));
  return issued->token;
}

Result<token::VerifiedToken> verify(std::string_view token, const keyset::KeySet& keys,
                                    UnixSeconds now = k_now,
                                    const claims::VerifyPolicy& policy = default_policy()) {
  return token::verify(token, keys, policy, now);
}

std::string segment_text(std::string_view token, int index) {
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  const auto text = index == 0 ? token.substr(0, first) : token.substr(first + 1, second - first - 1);
  const auto bytes = base64url::decode(text);
  REQUIRE(bytes);
  return *bytes;
}

// A token with header `header_json` and claims `claims`, correctly signed by `key`.
std::string crafted(const keys::Key& key, std::string_view header_json, const json::Json& claims) {
  return raw_signed(key, header_json, claims.dump());
}

std::string es_header(const keys::Key& key) {
  return R"({"alg":"ES256","typ":"at+jwt","kid":")" + key.kid() + "\"}";
}

json::Json valid_claims() {
  return {
      {"iss", "claudegate"}, {"sub", "alice"}, {"aud", "claude-proxy"},     {"iat", k_now}, {"nbf", k_now},
      {"exp", k_now + 900},  {"jti", "j"},     {"scope", "claude:messages"}};
}

} // namespace

TEST_CASE("token: issue then verify round-trips for all 8 algorithms") {
  for (const auto alg : keys::all_algs()) {
    CAPTURE(alg_name(alg));
    const auto& key = cached_key(alg);
    const auto keys = verifier_keys({alg});
    const auto token = issue_for(key);
    const auto verified = verify(token, keys);
    REQUIRE_MESSAGE(verified, message_of(verified));
    CHECK(verified->alg == alg);
    CHECK(verified->kid == key.kid());
    CHECK(verified->claims["sub"] == "alice");
    CHECK(verified->header["typ"] == "at+jwt");
  }
}

TEST_CASE("token: header is exactly alg, typ at+jwt, kid, in that order") {
  for (const auto alg : {keys::Alg::RS256, keys::Alg::EdDSA, keys::Alg::HS256}) {
    const auto& key = cached_key(alg);
    const auto header = segment_text(issue_for(key), 0);
    CHECK(header
          == R"({"alg":")" + std::string(alg_name(alg)) + R"(","typ":"at+jwt","kid":")" + key.kid() + "\"}");
  }
}

TEST_CASE("token: claims are minted in order with the request's values") {
  CountingRandom rng;
  auto request = alice();
  request.plan = "pro";
  request.scope = "claude:messages claude:models";
  const auto issued = token::issue(request, cached_key(keys::Alg::ES256), k_now, rng);
  REQUIRE(issued);
  const auto jti = b64(std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 16));
  CHECK(issued->jti == jti);
  CHECK(issued->issued_at == k_now);
  CHECK(issued->expires_at == k_now + 900);
  CHECK(issued->kid == cached_key(keys::Alg::ES256).kid());
  const auto expected = R"({"iss":"claudegate","sub":"alice","aud":"claude-proxy","iat":1795428000,)"
                        R"("nbf":1795428000,"exp":1795428900,"jti":")"
                        + jti + R"(","plan":"pro","scope":"claude:messages claude:models"})";
  CHECK(segment_text(issued->token, 1) == expected);
  CHECK(issued->claims == json::Json::parse(expected));
}

TEST_CASE("token: roles, daily_token_limit and fid appear only when set") {
  auto request = alice();
  request.roles = {"admin", "dev"};
  request.daily_token_limit = 1000;
  request.family_id = "fam-1";
  const auto verified =
      verify(issue_for(cached_key(keys::Alg::HS256), request), verifier_keys({keys::Alg::HS256}));
  REQUIRE_MESSAGE(verified, message_of(verified));
  CHECK(verified->claims["roles"] == json::Json::array({"admin", "dev"}));
  CHECK(verified->claims["daily_token_limit"] == 1000);
  CHECK(verified->claims["fid"] == "fam-1");
  const auto plain = segment_text(issue_for(cached_key(keys::Alg::HS256)), 1);
  for (const char* name : {"roles", "daily_token_limit", "fid"}) {
    CHECK_FALSE(contains(plain, name));
  }
}

TEST_CASE("token: jti has 128 random bits and differs across issues") {
  SystemRandom rng;
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const auto issued = token::issue(alice(), cached_key(keys::Alg::HS256), k_now, rng);
    REQUIRE(issued);
    const auto bytes = base64url::decode(issued->jti);
    REQUIRE(bytes);
    CHECK(bytes->size() == 16);
    seen.insert(issued->jti);
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("token: extra claims are included after the standard ones") {
  auto request = alice();
  request.extra_claims = {{"team", "infra"}, {"cost_center", 42}, {"tags", {"a", "b"}}};
  SystemRandom rng;
  const auto issued = token::issue(request, cached_key(keys::Alg::ES256), k_now, rng);
  REQUIRE(issued);
  const auto payload = segment_text(issued->token, 1);
  CHECK(payload.find("\"scope\"") < payload.find("\"cost_center\""));
  const auto verified = verify(issued->token, verifier_keys({keys::Alg::ES256}));
  REQUIRE(verified);
  CHECK(verified->claims["team"] == "infra");
  CHECK(verified->claims["tags"] == json::Json::array({"a", "b"}));
}

TEST_CASE("token: an extra claim may not override a registered claim") {
  for (const auto& name : claims::registered_names()) {
    CAPTURE(name);
    auto request = alice();
    request.extra_claims = {{name, "x"}};
    SystemRandom rng;
    const auto issued = token::issue(request, cached_key(keys::Alg::HS256), k_now, rng);
    CHECK(code_of(issued) == "config");
    CHECK(contains(message_of(issued), name));
  }
}

TEST_CASE("token: issue validates subject, ttl and the request") {
  SystemRandom rng;
  const auto& key = cached_key(keys::Alg::HS256);
  auto request = alice();
  request.subject.clear();
  CHECK(code_of(token::issue(request, key, k_now, rng)) == "config");
  for (const std::int64_t ttl :
       {std::int64_t{0}, std::int64_t{-1}, std::numeric_limits<std::int64_t>::max()}) {
    CAPTURE(ttl);
    request = alice();
    request.ttl = ttl;
    CHECK(code_of(token::issue(request, key, k_now, rng)) == "config");
  }
  request = alice();
  request.extra_claims = json::Json::array({"x"});
  CHECK(code_of(token::issue(request, key, k_now, rng)) == "config");
  request = alice();
  request.daily_token_limit = -5;
  CHECK(code_of(token::issue(request, key, k_now, rng)) == "config");
  request = alice();
  request.audience.clear();
  CHECK(code_of(token::issue(request, key, k_now, rng)) == "config");
}

TEST_CASE("token: issue refuses a token our verifier would refuse for its size") {
  auto request = alice();
  request.extra_claims = {{"blob", std::string(9000, 'x')}};
  SystemRandom rng;
  CHECK(code_of(token::issue(request, cached_key(keys::Alg::HS256), k_now, rng)) == "config");
}

TEST_CASE("token: issue with a public-only key fails") {
  const auto public_key = cached_key(keys::Alg::EdDSA).public_only();
  REQUIRE(public_key);
  SystemRandom rng;
  CHECK(code_of(token::issue(alice(), *public_key, k_now, rng)) == "unsupported");
}

TEST_CASE("token: a token without kid is an unknown key") {
  const auto& key = cached_key(keys::Alg::ES256);
  const auto r = verify(crafted(key, R"({"alg":"ES256","typ":"at+jwt"})", valid_claims()),
                        verifier_keys({keys::Alg::ES256}));
  CHECK(code_of(r) == "unknown_key");
  CHECK(message_of(r) == "token has no kid; keys are chosen by kid only");
}

TEST_CASE("token: kid tricks never find a key") {
  const auto& key = cached_key(keys::Alg::ES256);
  const auto keys = verifier_keys({keys::Alg::ES256});
  for (std::string_view kid : {"../../etc/passwd", "", "' OR '1'='1", "1; DROP TABLE keys; --", "*", "%",
                               "/dev/null", "kid\\u0000"}) {
    CAPTURE(kid);
    const auto header = R"({"alg":"ES256","typ":"at+jwt","kid":")" + std::string(kid) + "\"}";
    const auto r = verify(crafted(key, header, valid_claims()), keys);
    CHECK(code_of(r) == "unknown_key");
  }
  const auto r = verify(crafted(key, R"({"alg":"ES256","kid":"../../etc/passwd"})", valid_claims()), keys);
  CHECK(contains(message_of(r), R"("../../etc/passwd")"));
  // A prefix or case variant of a real kid is a different kid.
  const auto upper = key.kid().substr(0, 10);
  CHECK(code_of(verify(crafted(key, R"({"alg":"ES256","kid":")" + upper + "\"}", valid_claims()), keys))
        == "unknown_key");
}

TEST_CASE("token: a non-string kid is malformed") {
  const auto& key = cached_key(keys::Alg::ES256);
  for (std::string_view header :
       {R"({"alg":"ES256","kid":1})", R"({"alg":"ES256","kid":["x"]})",
        R"({"alg":"ES256","kid":{"path":"/etc/passwd"}})", R"({"alg":"ES256","kid":null})"}) {
    CAPTURE(header);
    CHECK(code_of(verify(crafted(key, header, valid_claims()), verifier_keys({keys::Alg::ES256})))
          == "malformed");
  }
}

TEST_CASE("token: no try-every-key fallback; the kid's key must have signed") {
  const auto other = keys::Key::generate(keys::Alg::ES256);
  REQUIRE(other);
  // Signed by `other`, but naming the trusted key's kid.
  const auto token = crafted(*other, es_header(cached_key(keys::Alg::ES256)), valid_claims());
  keyset::KeySet keys = verifier_keys({keys::Alg::ES256});
  CHECK(code_of(verify(token, keys)) == "bad_signature");
}

TEST_CASE("token: RS256 to HS256 confusion with the public key as HMAC secret is refused") {
  const auto& rsa = cached_key(keys::Alg::RS256);
  const auto keys = verifier_keys({keys::Alg::RS256});
  const auto header = R"({"alg":"HS256","typ":"at+jwt","kid":")" + rsa.kid() + "\"}";
  const auto pem = test::public_pem(rsa);
  REQUIRE(pem);
  const auto jwk = rsa.to_jwk(keys::IncludePrivate::no);
  REQUIRE(jwk);
  const auto n = base64url::decode((*jwk)["n"].get<std::string>());
  REQUIRE(n);
  for (const auto& secret : {*pem, *pem + "\n", pem->substr(0, pem->size() - 1), jwk->dump(), *n}) {
    const auto hmac = keys::Key::from_secret(secret);
    REQUIRE(hmac);
    const auto r = verify(crafted(*hmac, header, valid_claims()), keys);
    CHECK(code_of(r) == "unsupported");
    CHECK(contains(message_of(r), "does not match"));
  }
}

TEST_CASE("token: alg none with a real kid is refused") {
  const auto keys = verifier_keys({keys::Alg::RS256});
  const auto kid = cached_key(keys::Alg::RS256).kid();
  for (std::string_view alg : {"none", "None", "NONE", "nOnE"}) {
    const auto header = R"({"alg":")" + std::string(alg) + R"(","kid":")" + kid + "\"}";
    CHECK(code_of(verify(compact(header, valid_claims().dump(), ""), keys)) == "unsupported");
    CHECK(code_of(verify(compact(header, valid_claims().dump(), "sig"), keys)) == "unsupported");
  }
}

TEST_CASE("token: refused header parameters fail even when correctly signed") {
  const auto& key = cached_key(keys::Alg::ES256);
  for (std::string_view extra :
       {R"("crit":["exp"])", R"("jku":"https://evil/jwks")", R"("x5u":"https://evil/c")",
        R"("jwk":{"kty":"EC"})", R"("x5c":["MII"])", R"("zip":"DEF")", R"("cty":"JWT")", R"("b64":false)"}) {
    CAPTURE(extra);
    const auto header = R"({"alg":"ES256","kid":")" + key.kid() + "\"," + std::string(extra) + "}";
    CHECK(code_of(verify(crafted(key, header, valid_claims()), verifier_keys({keys::Alg::ES256})))
          == "unsupported");
  }
}

TEST_CASE("token: duplicate claims, even nested, are malformed") {
  const auto& key = cached_key(keys::Alg::ES256);
  const auto header = es_header(key);
  const auto base = valid_claims().dump();
  const auto dup = base.substr(0, base.size() - 1) + R"(,"sub":"admin"})";
  CHECK(code_of(verify(raw_signed(key, header, dup), verifier_keys({keys::Alg::ES256}))) == "malformed");
  const auto nested = base.substr(0, base.size() - 1) + R"(,"ctx":{"r":1,"r":2}})";
  CHECK(code_of(verify(raw_signed(key, header, nested), verifier_keys({keys::Alg::ES256}))) == "malformed");
}

TEST_CASE("token: the signature is checked before the claims") {
  const auto& key = cached_key(keys::Alg::ES256);
  const auto other = keys::Key::generate(keys::Alg::ES256);
  REQUIRE(other);
  auto expired = valid_claims();
  expired["exp"] = k_now - 3600;
  expired["iss"] = "evil";
  // Expired, wrong issuer and badly signed: the signature is what fails.
  CHECK(code_of(verify(crafted(*other, es_header(key), expired), verifier_keys({keys::Alg::ES256})))
        == "bad_signature");
  CHECK(code_of(verify(crafted(key, es_header(key), expired), verifier_keys({keys::Alg::ES256})))
        == "expired");
}

TEST_CASE("token: expiry, not-before and issued-at through verify") {
  const auto& key = cached_key(keys::Alg::EdDSA);
  const auto keys = verifier_keys({keys::Alg::EdDSA});
  const auto token = issue_for(key); // iat = nbf = k_now, exp = k_now + 900
  CHECK(code_of(verify(token, keys, k_now + 900 + 59)) == "ok");
  const auto expired = verify(token, keys, k_now + 900 + 60);
  CHECK(code_of(expired) == "expired");
  CHECK(contains(message_of(expired), "leeway 60s"));
  CHECK(code_of(verify(token, keys, k_now - 60)) == "ok");
  CHECK(code_of(verify(token, keys, k_now - 61)) == "not_yet_valid");
}

TEST_CASE("token: hand-made claims with bad times are refused") {
  const auto& key = cached_key(keys::Alg::ES256);
  const auto keys = verifier_keys({keys::Alg::ES256});
  auto check_with = [&](const char* name, std::optional<json::Json> value) {
    auto c = valid_claims();
    if (value) {
      c[name] = *value;
    } else {
      c.erase(name);
    }
    return code_of(verify(crafted(key, es_header(key), c), keys));
  };
  CHECK(check_with("exp", std::nullopt) == "claim_mismatch");
  CHECK(check_with("exp", "1795428900") == "malformed");
  CHECK(check_with("exp", -1) == "malformed");
  CHECK(check_with("exp", 1e20) == "malformed");
  CHECK(check_with("exp", static_cast<double>(k_now) + 0.5) == "ok");
  CHECK(check_with("nbf", k_now + 3600) == "not_yet_valid");
  CHECK(check_with("iat", k_now + 3600) == "not_yet_valid");
  CHECK(check_with("iat", k_now - 2 * 86400) == "claim_mismatch"); // lifetime exp − iat > 24h
}

TEST_CASE("token: audience forms through verify") {
  const auto& key = cached_key(keys::Alg::ES256);
  const auto keys = verifier_keys({keys::Alg::ES256});
  auto with_aud = [&](const json::Json& aud) {
    auto c = valid_claims();
    c["aud"] = aud;
    return code_of(verify(crafted(key, es_header(key), c), keys));
  };
  CHECK(with_aud("claude-proxy") == "ok");
  CHECK(with_aud(json::Json::array({"other", "claude-proxy"})) == "ok");
  CHECK(with_aud(json::Json::array()) == "claim_mismatch");
  CHECK(with_aud("CLAUDE-PROXY") == "claim_mismatch");
  CHECK(with_aud(json::Json::array({"claude-proxy", 5})) == "malformed");
}

TEST_CASE("token: typ JWT from an external IdP verifies, a wrong typ does not") {
  const auto& key = cached_key(keys::Alg::ES256);
  const auto keys = verifier_keys({keys::Alg::ES256});
  const auto jwt = R"({"alg":"ES256","typ":"JWT","kid":")" + key.kid() + "\"}";
  CHECK(code_of(verify(crafted(key, jwt, valid_claims()), keys)) == "ok");
  const auto bad = R"({"alg":"ES256","typ":"jwt","kid":")" + key.kid() + "\"}";
  CHECK(code_of(verify(crafted(key, bad, valid_claims()), keys)) == "claim_mismatch");
  const auto none = R"({"alg":"ES256","kid":")" + key.kid() + "\"}";
  CHECK(code_of(verify(crafted(key, none, valid_claims()), keys)) == "claim_mismatch");
}

TEST_CASE("token: an external kid added to the key set is honoured") {
  const auto& key = cached_key(keys::Alg::RS256);
  keyset::KeySet keys;
  keys.add("idp-key-2024", *key.public_only());
  const auto header = R"({"alg":"RS256","typ":"JWT","kid":"idp-key-2024"})";
  CHECK(code_of(verify(crafted(key, header, valid_claims()), keys)) == "ok");
  CHECK(code_of(verify(issue_for(key), keys)) == "unknown_key"); // thumbprint kid is not in this set
}

TEST_CASE("token: required scopes through verify") {
  auto policy = default_policy();
  policy.required_scopes = {"claude:models"};
  const auto& key = cached_key(keys::Alg::HS256);
  const auto keys = verifier_keys({keys::Alg::HS256});
  CHECK(code_of(verify(issue_for(key), keys, k_now, policy)) == "claim_mismatch");
  auto request = alice();
  request.scope = "claude:messages claude:models";
  CHECK(code_of(verify(issue_for(key, request), keys, k_now, policy)) == "ok");
}

TEST_CASE("token: claims JSON is byte for byte what nlohmann writes, tricky strings round-trip") {
  using namespace std::string_literals;
  auto request = alice();
  request.subject = "quote\" back\\slash \x01\x1f\x7f\n\t caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"s;
  request.issuer = "iss\xe2\x80\xa8</script>";
  request.audience = "aud\\u0000";
  request.plan = "nul\0byte"s;
  request.roles = {"r\"1", "", "\xc3\xa9"};
  request.daily_token_limit = 0;
  request.family_id = "fam\\";
  request.extra_claims = {{"nested", {{"k", "v\"\n"}, {"arr", {1, -2, 1.5, nullptr, true}}}},
                          {"\xc3\xbcn\xc3\xaf", "x"}};
  CountingRandom rng;
  const auto& key = cached_key(keys::Alg::EdDSA);
  const auto issued = token::issue(request, key, k_now, rng);
  REQUIRE_MESSAGE(issued, message_of(issued));
  // What the nlohmann::ordered_json implementation minted, in the same order.
  nlohmann::ordered_json expected = {
      {"iss", request.issuer},  {"sub", request.subject}, {"aud", request.audience}, {"iat", k_now},
      {"nbf", k_now},           {"exp", k_now + 900},     {"jti", issued->jti},      {"plan", request.plan},
      {"scope", request.scope}, {"roles", request.roles}, {"daily_token_limit", 0},  {"fid", "fam\\"}};
  for (const auto& [name, value] : request.extra_claims.items()) {
    expected[name] = nlohmann::ordered_json(value);
  }
  const auto payload = segment_text(issued->token, 1);
  CHECK(payload == expected.dump());
  const auto parsed = json::Json::parse(payload);
  CHECK(parsed["sub"] == request.subject);
  CHECK(parsed["iss"] == request.issuer);
  CHECK(parsed["plan"] == request.plan);
  CHECK(parsed["roles"] == json::Json(request.roles));
  CHECK(parsed == issued->claims);
  claims::VerifyPolicy policy;
  const auto verified = token::verify(issued->token, verifier_keys({keys::Alg::EdDSA}), policy, k_now);
  REQUIRE_MESSAGE(verified, message_of(verified));
  CHECK(verified->claims == issued->claims);
}

TEST_CASE("token: a claim holding invalid UTF-8 is refused at issue") {
  SystemRandom rng;
  const auto& key = cached_key(keys::Alg::HS256);
  auto bad_subject = alice();
  bad_subject.subject = "al\xffice";
  auto bad_role = alice();
  bad_role.roles = {"ok", "\xc3"};
  auto bad_extra = alice();
  bad_extra.extra_claims = {{"team", "\xed\xa0\x80"}};
  for (const auto* request : {&bad_subject, &bad_role, &bad_extra}) {
    const auto issued = token::issue(*request, key, k_now, rng);
    CHECK(code_of(issued) == "config");
    CHECK(contains(message_of(issued), "cannot be serialized"));
  }
}
