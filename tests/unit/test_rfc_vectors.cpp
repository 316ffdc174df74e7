// SPDX-License-Identifier: Apache-2.0
// Known-answer vectors from RFC 7515 App. A, RFC 7520 (JOSE cookbook), RFC 8037
// and RFC 7797, read in place from the shared vectors folder.
#include "claudegate/jose/claims.hpp"
#include "claudegate/jose/jws.hpp"
#include "claudegate/jose/token.hpp"

#include "jose_support.hpp"
#include "vectors.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace claudegate;

// Every case here reads the shared vectors (see vectors.hpp).
TEST_SUITE_BEGIN("vectors");
using namespace claudegate::test;

namespace {

constexpr UnixSeconds k_rfc7515_now = 1300819000; // before A.x's exp 1300819380

std::optional<json::Json> rfc7515_vector(const std::string& section) {
  const auto file = load_vectors("rfc/rfc7515_appendixA.json");
  if (!file) {
    return std::nullopt;
  }
  for (const auto& vector : (*file)["vectors"]) {
    if (vector["section"] == section) {
      return vector;
    }
  }
  FAIL("no vector " << section);
  return std::nullopt;
}

keys::Key key_from(const json::Json& jwk) {
  auto key = keys::Key::from_jwk(jwk);
  REQUIRE_MESSAGE(key, message_of(key));
  return std::move(*key);
}

// RFC 7515 A.x carry no iss/aud and typ only in A.1: verify the signature and times alone.
claims::VerifyPolicy rfc7515_policy(std::vector<std::string> typs) {
  claims::VerifyPolicy policy;
  policy.allowed_typs = std::move(typs);
  return policy;
}

// Decode, check the signature with `key`, then the claims: token::verify without the kid step.
Result<void> verify_with(const std::string& compact_token, const keys::Key& key,
                         const claims::VerifyPolicy& policy, UnixSeconds now) {
  auto decoded = jws::decode(compact_token);
  if (!decoded) {
    return std::unexpected(decoded.error());
  }
  if (auto r = jws::verify_signature(*decoded, key); !r) {
    return r;
  }
  return claims::check(decoded->typ, decoded->payload, policy, now);
}

std::string signing_input_of(const std::string& compact_token) {
  return compact_token.substr(0, compact_token.rfind('.'));
}

std::string signature_of(const std::string& compact_token) {
  const auto sig = base64url::decode(compact_token.substr(compact_token.rfind('.') + 1));
  REQUIRE(sig);
  return *sig;
}

// A deterministic algorithm re-signs the exact signing input to the same token, byte for byte.
void check_resigns_exactly(const std::string& compact_token, const keys::Key& key) {
  const auto input = signing_input_of(compact_token);
  const auto sig = signature::sign(key.alg(), key, input);
  REQUIRE_MESSAGE(sig, message_of(sig));
  CHECK(input + "." + b64(*sig) == compact_token);
}

// A DecodedToken for a JWS whose payload is not JSON (the cookbook's prose payloads).
jws::DecodedToken detached_view(const std::string& compact_token, keys::Alg alg) {
  jws::DecodedToken decoded;
  decoded.alg = alg;
  decoded.signing_input = signing_input_of(compact_token);
  decoded.signature = signature_of(compact_token);
  return decoded;
}

std::optional<json::Json> cookbook(const std::string& name) {
  return load_vectors("rfc/jose-cookbook/" + name);
}

} // namespace

TEST_CASE("rfc7515: A.1 HS256 verifies at the pinned clock and re-signs byte for byte") {
  const auto vector = rfc7515_vector("RFC 7515 A.1");
  if (!vector) {
    return;
  }
  const auto key = key_from((*vector)["jwk"]);
  CHECK(key.alg() == keys::Alg::HS256);
  const std::string token = (*vector)["compact"];
  CHECK(code_of(verify_with(token, key, rfc7515_policy({}), k_rfc7515_now)) == "ok");
  CHECK(code_of(verify_with(token, key, rfc7515_policy({"JWT"}), k_rfc7515_now)) == "ok");
  CHECK(code_of(verify_with(token, key, rfc7515_policy({"at+jwt"}), k_rfc7515_now)) == "claim_mismatch");
  CHECK(code_of(verify_with(token, key, rfc7515_policy({}), 1300819380 + 60)) == "expired");
  check_resigns_exactly(token, key);
  // The protected header has CRLF: signing its exact bytes reproduces the token.
  const auto resigned = jws::sign_serialized((*vector)["protected_header_json"].get<std::string>(),
                                             (*vector)["payload"].get<std::string>(), key);
  REQUIRE_MESSAGE(resigned, message_of(resigned));
  CHECK(*resigned == token);
}

TEST_CASE("rfc7515: A.1 has no kid, so token::verify refuses to pick a key") {
  const auto vector = rfc7515_vector("RFC 7515 A.1");
  if (!vector) {
    return;
  }
  keyset::KeySet keys;
  keys.add(key_from((*vector)["jwk"]));
  const auto r =
      token::verify((*vector)["compact"].get<std::string>(), keys, rfc7515_policy({"JWT"}), k_rfc7515_now);
  CHECK(code_of(r) == "unknown_key");
}

TEST_CASE("rfc7515: A.2 RS256 verifies and re-signs byte for byte") {
  const auto vector = rfc7515_vector("RFC 7515 A.2");
  if (!vector) {
    return;
  }
  const auto key = key_from((*vector)["jwk"]);
  CHECK(key.alg() == keys::Alg::RS256);
  const std::string token = (*vector)["compact"];
  CHECK(code_of(verify_with(token, key, rfc7515_policy({}), k_rfc7515_now)) == "ok");
  CHECK(code_of(verify_with(token, *key.public_only(), rfc7515_policy({}), k_rfc7515_now)) == "ok");
  check_resigns_exactly(token, key);
}

TEST_CASE("rfc7515: A.3 ES256 verifies; a fresh signature over the same input verifies too") {
  const auto vector = rfc7515_vector("RFC 7515 A.3");
  if (!vector) {
    return;
  }
  const auto key = key_from((*vector)["jwk"]);
  CHECK(key.alg() == keys::Alg::ES256);
  const std::string token = (*vector)["compact"];
  CHECK(code_of(verify_with(token, key, rfc7515_policy({}), k_rfc7515_now)) == "ok");
  const auto input = signing_input_of(token);
  const auto sig = signature::sign(keys::Alg::ES256, key, input);
  REQUIRE(sig);
  CHECK(sig->size() == 64);
  CHECK(code_of(verify_with(input + "." + b64(*sig), key, rfc7515_policy({}), k_rfc7515_now)) == "ok");
}

TEST_CASE("rfc7515: A.4 ES512 is refused as unsupported") {
  const auto vector = rfc7515_vector("RFC 7515 A.4");
  if (!vector) {
    return;
  }
  const auto decoded = jws::decode((*vector)["compact"].get<std::string>());
  CHECK(code_of(decoded) == "unsupported");
  CHECK(contains(message_of(decoded), "ES512"));
  CHECK(code_of(keys::Key::from_jwk((*vector)["jwk"])) == "unsupported"); // P-521 keys are refused as well
}

TEST_CASE("rfc7515: A.5 alg none is refused") {
  const auto vector = rfc7515_vector("RFC 7515 A.5");
  if (!vector) {
    return;
  }
  const auto decoded = jws::decode((*vector)["compact"].get<std::string>());
  CHECK(code_of(decoded) == "unsupported");
  CHECK(contains(message_of(decoded), "none"));
}

TEST_CASE("rfc7520: 4.1 RS256 verifies and re-signs byte for byte") {
  const auto vector = cookbook("jws/4_1.rsa_v15_signature.json");
  if (!vector) {
    return;
  }
  const auto key = key_from((*vector)["input"]["key"]);
  const std::string token = (*vector)["output"]["compact"];
  CHECK(signing_input_of(token) == (*vector)["signing"]["sig-input"]);
  CHECK(code_of(jws::verify_signature(detached_view(token, keys::Alg::RS256), key)) == "ok");
  check_resigns_exactly(token, key);
  const auto header = base64url::decode((*vector)["signing"]["protected_b64u"].get<std::string>());
  REQUIRE(header);
  const auto resigned = jws::sign_serialized(*header, (*vector)["input"]["payload"].get<std::string>(), key);
  REQUIRE_MESSAGE(resigned, message_of(resigned));
  CHECK(*resigned == token);
  // Its payload is prose, not a claims object: as an access token it is malformed.
  const auto decoded = jws::decode(token);
  CHECK(code_of(decoded) == "malformed");
  CHECK(contains(message_of(decoded), "payload"));
}

TEST_CASE("rfc7520: 4.2 PS384 is refused as unsupported") {
  const auto vector = cookbook("jws/4_2.rsa-pss_signature.json");
  if (!vector) {
    return;
  }
  const auto decoded = jws::decode((*vector)["output"]["compact"].get<std::string>());
  CHECK(code_of(decoded) == "unsupported");
  CHECK(contains(message_of(decoded), "PS384"));
}

TEST_CASE("rfc7520: 4.3 ES512 is refused as unsupported") {
  const auto vector = cookbook("jws/4_3.ecdsa_signature.json");
  if (!vector) {
    return;
  }
  const auto decoded = jws::decode((*vector)["output"]["compact"].get<std::string>());
  CHECK(code_of(decoded) == "unsupported");
  CHECK(contains(message_of(decoded), "ES512"));
}

TEST_CASE("rfc7520: 4.4 HS256 verifies and re-signs byte for byte") {
  const auto vector = cookbook("jws/4_4.hmac-sha2_integrity_protection.json");
  if (!vector) {
    return;
  }
  const auto key = key_from((*vector)["input"]["key"]);
  CHECK(key.alg() == keys::Alg::HS256);
  const std::string token = (*vector)["output"]["compact"];
  CHECK(code_of(jws::verify_signature(detached_view(token, keys::Alg::HS256), key)) == "ok");
  check_resigns_exactly(token, key);
  auto tampered = detached_view(token, keys::Alg::HS256);
  tampered.signature.back() = static_cast<char>(tampered.signature.back() ^ 1);
  CHECK(code_of(jws::verify_signature(tampered, key)) == "bad_signature");
}

TEST_CASE("rfc8037: Ed25519 verifies and re-signs byte for byte") {
  const auto vector = cookbook("curve25519/jws.json");
  if (!vector) {
    return;
  }
  const auto key = key_from((*vector)["input"]["key"]);
  CHECK(key.alg() == keys::Alg::EdDSA);
  const std::string token = (*vector)["output"]["compact"];
  CHECK(signature_of(token).size() == 64);
  CHECK(code_of(jws::verify_signature(detached_view(token, keys::Alg::EdDSA), key)) == "ok");
  CHECK(code_of(jws::verify_signature(detached_view(token, keys::Alg::EdDSA), *key.public_only())) == "ok");
  check_resigns_exactly(token, key);
  const auto resigned =
      jws::sign_serialized(R"({"alg":"EdDSA"})", (*vector)["input"]["payload"].get<std::string>(), key);
  REQUIRE(resigned);
  CHECK(*resigned == token);
}

TEST_CASE("rfc7797: the b64=false token is refused, the control token verifies with its key") {
  const auto vector = load_vectors("rfc/rfc7797_b64false.json");
  if (!vector) {
    return;
  }
  const auto& b64_false = (*vector)["b64_false_4_2"];
  const auto detached = jws::decode(b64_false["detached_compact"].get<std::string>());
  CHECK(code_of(detached) == "unsupported");
  CHECK((contains(message_of(detached), "\"b64\"") || contains(message_of(detached), "\"crit\"")));
  CHECK(code_of(jws::decode(b64_false["attached_compact_invalid_chars"].get<std::string>())) == "malformed");
  // Even with a valid HMAC over its signing input, the header is what refuses it.
  const auto key = key_from((*vector)["key"]);
  const auto input = b64_false["signing_input"].get<std::string>();
  CHECK(code_of(signature::verify(keys::Alg::HS256, key, input,
                                  *base64url::decode(b64_false["signature"].get<std::string>())))
        == "ok");
  const std::string control = (*vector)["control_4_1"]["compact"];
  CHECK(code_of(jws::verify_signature(detached_view(control, keys::Alg::HS256), key)) == "ok");
  check_resigns_exactly(control, key);
}

TEST_SUITE_END();
