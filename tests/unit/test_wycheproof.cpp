// SPDX-License-Identifier: Apache-2.0
// Wycheproof verify vectors driven through signature::verify, read in place
// from the shared vectors folder (never copied into the repository).
#include "claudegate/jose/signature.hpp"

#include "vectors.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace claudegate;

// Every case here reads the shared vectors (see vectors.hpp).
TEST_SUITE_BEGIN("vectors");

namespace {

std::string from_hex(const std::string& hex) {
  REQUIRE(hex.size() % 2 == 0);
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// How many cases of each Wycheproof verdict we accepted and rejected.
struct Tally {
  int valid_accepted = 0;
  int valid_rejected = 0;
  int invalid_rejected = 0;
  int acceptable_rejected = 0;
  int total = 0;
};

// Verifies one Wycheproof case: valid must pass, invalid and acceptable must
// fail with bad_signature (we take the strict reading of "acceptable").
void run_case(const nlohmann::json& test, keys::Alg alg, const keys::Key& key, Tally& tally) {
  CAPTURE(test["tcId"].get<int>());
  CAPTURE(test["comment"].get<std::string>());
  const auto result = test["result"].get<std::string>();
  const auto verdict = signature::verify(alg, key, from_hex(test["msg"].get<std::string>()),
                                         from_hex(test["sig"].get<std::string>()));
  ++tally.total;
  if (result == "valid") {
    CHECK(verdict);
    tally.valid_accepted += verdict ? 1 : 0;
    tally.valid_rejected += verdict ? 0 : 1;
    return;
  }
  REQUIRE_FALSE(verdict);
  CHECK(verdict.error().code == Errc::bad_signature);
  (result == "invalid" ? tally.invalid_rejected : tally.acceptable_rejected) += 1;
}

// Runs every group of `file` with its public key loaded by `load_key`.
template <typename LoadKey> Tally run_file(const nlohmann::json& file, keys::Alg alg, LoadKey load_key) {
  Tally tally;
  for (const auto& group : file["testGroups"]) {
    const Result<keys::Key> key = load_key(group);
    if (!key) {
      FAIL("key did not load: " << key.error().message);
    }
    CHECK(key->alg() == alg);
    CHECK_FALSE(key->has_private());
    for (const auto& test : group["tests"]) {
      run_case(test, alg, *key, tally);
    }
  }
  CHECK(tally.total == file["numberOfTests"].get<int>());
  return tally;
}

Result<keys::Key> key_from_pem(const nlohmann::json& group, keys::Alg alg) {
  return keys::Key::from_pem(group["publicKeyPem"].get<std::string>(), alg);
}

} // namespace

TEST_CASE("wycheproof: ECDSA P-256 SHA-256 in P1363 (ES256) form") {
  const auto file = claudegate::test::load_vectors("wycheproof/ecdsa_secp256r1_sha256_p1363_test.json");
  if (!file) {
    return;
  }
  int jwk_groups = 0;
  const Tally tally = run_file(*file, keys::Alg::ES256, [&jwk_groups](const nlohmann::json& group) {
    auto key = key_from_pem(group, keys::Alg::ES256);
    // Most groups also carry the key as a JWK: both forms must give the same key.
    if (group.contains("publicKeyJwk")) {
      ++jwk_groups;
      const auto from_jwk = keys::Key::from_jwk(group["publicKeyJwk"], keys::Alg::ES256);
      CHECK((key && from_jwk && key->kid() == from_jwk->kid()));
    }
    return key;
  });
  CHECK(jwk_groups == 103);
  CHECK(tally.valid_accepted == 173);
  CHECK(tally.valid_rejected == 0);
  CHECK(tally.invalid_rejected == 89);
  CHECK(tally.acceptable_rejected == 0);
}

TEST_CASE("wycheproof: RSASSA-PKCS1-v1_5 2048 SHA-256 (RS256)") {
  const auto file = claudegate::test::load_vectors("wycheproof/rsa_signature_2048_sha256_test.json");
  if (!file) {
    return;
  }
  int e3_groups = 0;
  const Tally tally = run_file(*file, keys::Alg::RS256, [&e3_groups](const nlohmann::json& group) {
    // Two groups use e=3 keys: the primitive must still verify them correctly.
    e3_groups += group["publicKey"]["publicExponent"] == "03" ? 1 : 0;
    auto key = key_from_pem(group, keys::Alg::RS256);
    const auto from_jwk = keys::Key::from_jwk(group["keyJwk"], keys::Alg::RS256);
    CHECK((key && from_jwk && key->kid() == from_jwk->kid()));
    return key;
  });
  CHECK(e3_groups == 2);
  CHECK(tally.valid_accepted == 9);
  CHECK(tally.valid_rejected == 0);
  CHECK(tally.invalid_rejected == 249);
  CHECK(tally.acceptable_rejected == 1); // tcId 8: DigestInfo without the NULL parameter
}

TEST_CASE("wycheproof: RSA tcId 8 (missing NULL) is rejected") {
  const auto file = claudegate::test::load_vectors("wycheproof/rsa_signature_2048_sha256_test.json");
  if (!file) {
    return;
  }
  const auto& group = (*file)["testGroups"][0];
  const auto key = key_from_pem(group, keys::Alg::RS256);
  REQUIRE(key);
  for (const auto& test : group["tests"]) {
    if (test["tcId"] == 8) {
      CHECK(test["result"] == "acceptable");
      const auto verdict = signature::verify(keys::Alg::RS256, *key, from_hex(test["msg"].get<std::string>()),
                                             from_hex(test["sig"].get<std::string>()));
      REQUIRE_FALSE(verdict);
      CHECK(verdict.error().code == Errc::bad_signature);
      return;
    }
  }
  FAIL("tcId 8 not found");
}

TEST_CASE("wycheproof: Ed25519 (EdDSA)") {
  const auto file = claudegate::test::load_vectors("wycheproof/ed25519_test.json");
  if (!file) {
    return;
  }
  const Tally tally = run_file(*file, keys::Alg::EdDSA, [](const nlohmann::json& group) {
    auto key = keys::Key::from_jwk(group["publicKeyJwk"], keys::Alg::EdDSA);
    const auto from_pem = key_from_pem(group, keys::Alg::EdDSA);
    CHECK((key && from_pem && key->kid() == from_pem->kid()));
    return key;
  });
  CHECK(tally.valid_accepted == 88);
  CHECK(tally.valid_rejected == 0);
  CHECK(tally.invalid_rejected == 63);
  CHECK(tally.acceptable_rejected == 0);
}

namespace {

// HMAC outcomes: HS256 policy adds two refusals on top of the MAC itself.
struct MacTally {
  int valid_accepted = 0;
  int valid_short_tag_rejected = 0; // 128-bit truncated tags: JWS HS256 needs all 32 bytes
  int valid_short_key_rejected = 0; // keys under 32 bytes never become HS256 keys
  int invalid_rejected = 0;
  int total = 0;
};

void run_mac_case(const nlohmann::json& group, const nlohmann::json& test, MacTally& tally) {
  CAPTURE(test["tcId"].get<int>());
  CAPTURE(test["comment"].get<std::string>());
  ++tally.total;
  const bool valid = test["result"] == "valid";
  const auto key = keys::Key::from_secret(from_hex(test["key"].get<std::string>()));
  if (group["keySize"].get<int>() < 256) {
    REQUIRE_FALSE(key);
    CHECK(key.error().code == Errc::unsupported);
    tally.valid_short_key_rejected += valid ? 1 : 0;
    tally.invalid_rejected += valid ? 0 : 1;
    return;
  }
  REQUIRE(key);
  const auto verdict = signature::verify(keys::Alg::HS256, *key, from_hex(test["msg"].get<std::string>()),
                                         from_hex(test["tag"].get<std::string>()));
  const bool full_tag = group["tagSize"].get<int>() == 256;
  if (valid && full_tag) {
    CHECK(verdict);
    tally.valid_accepted += verdict ? 1 : 0;
    return;
  }
  REQUIRE_FALSE(verdict);
  CHECK(verdict.error().code == Errc::bad_signature);
  (valid ? tally.valid_short_tag_rejected : tally.invalid_rejected) += 1;
}

} // namespace

TEST_CASE("wycheproof: HMAC-SHA256 (HS256) with the 32-byte tag and key policy") {
  const auto file = claudegate::test::load_vectors("wycheproof/hmac_sha256_test.json");
  if (!file) {
    return;
  }
  MacTally tally;
  for (const auto& group : (*file)["testGroups"]) {
    for (const auto& test : group["tests"]) {
      run_mac_case(group, test, tally);
    }
  }
  CHECK(tally.total == 174);
  CHECK(tally.valid_accepted == 30);           // 27 with 256-bit keys, 3 with 520-bit keys
  CHECK(tally.valid_short_tag_rejected == 30); // 128-bit tags under 256- and 520-bit keys
  CHECK(tally.valid_short_key_rejected == 6);  // 128-bit keys, with either tag size
  CHECK(tally.invalid_rejected == 108);
}

TEST_SUITE_END();
