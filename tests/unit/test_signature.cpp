// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/signature.hpp"

#include "claudegate/jose/base64url.hpp"

#include "jose_support.hpp"
#include "vectors.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace claudegate;

namespace {

const keys::Key& key_for(keys::Alg alg) {
  static std::map<keys::Alg, keys::Key> keys;
  auto it = keys.find(alg);
  if (it == keys.end()) {
    auto key = keys::Key::generate(alg);
    REQUIRE(key);
    it = keys.emplace(alg, std::move(*key)).first;
  }
  return it->second;
}

Errc error_of(const Result<void>& r) {
  REQUIRE_FALSE(r);
  return r.error().code;
}

std::string flip_last_bit(std::string bytes) {
  bytes.back() = static_cast<char>(bytes.back() ^ 1);
  return bytes;
}

// Verifies compact JWS `compact` with `jwk`, as the RFC examples give them.
void check_known_answer(const nlohmann::json& jwk, keys::Alg alg, const std::string& compact) {
  const auto key = keys::Key::from_jwk(jwk, alg);
  REQUIRE(key);
  const auto dot = compact.rfind('.');
  const auto input = compact.substr(0, dot);
  const auto sig = base64url::decode(compact.substr(dot + 1));
  REQUIRE(sig);
  CHECK(signature::verify(alg, *key, input, *sig));
  CHECK(error_of(signature::verify(alg, *key, input + " ", *sig)) == Errc::bad_signature);
  CHECK(error_of(signature::verify(alg, *key, input, flip_last_bit(*sig))) == Errc::bad_signature);
  if (alg == keys::Alg::HS256 || alg == keys::Alg::EdDSA || alg == keys::Alg::RS256) {
    CHECK(signature::sign(alg, *key, input) == *sig); // deterministic algorithms
  }
}

// A PSS signature with salt length `salt` made directly with OpenSSL.
std::string pss_sign(const keys::Key& key, std::string_view input, int salt) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  REQUIRE(EVP_DigestSignInit_ex(ctx.get(), &pctx, "SHA256", nullptr, nullptr, key.evp(), nullptr) == 1);
  REQUIRE(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
  REQUIRE(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) == 1);
  std::string sig(key.signature_size(), '\0');
  std::size_t length = sig.size();
  REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &length,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size())
          == 1);
  sig.resize(length);
  return sig;
}

} // namespace

TEST_CASE("signature: sign and verify round trip for every algorithm") {
  const std::string input = "eyJhbGciOiJ4In0.eyJzdWIiOiJ0ZXN0In0";
  for (const keys::Alg alg : keys::all_algs()) {
    CAPTURE(alg_name(alg));
    const keys::Key& key = key_for(alg);
    const auto sig = signature::sign(alg, key, input);
    REQUIRE(sig);
    CHECK(sig->size() == key.signature_size());
    CHECK(signature::verify(alg, key, input, *sig));
    CHECK(signature::verify(alg, *key.public_only(), input, *sig));
    CHECK(error_of(signature::verify(alg, key, input + "x", *sig)) == Errc::bad_signature);
    CHECK(error_of(signature::verify(alg, key, input, flip_last_bit(*sig))) == Errc::bad_signature);
    CHECK(signature::verify(alg, key, "", *signature::sign(alg, key, "")));
  }
}

TEST_CASE("signature: the algorithm must be the key's") {
  for (const keys::Alg key_alg : keys::all_algs()) {
    const keys::Key& key = key_for(key_alg);
    const auto sig = signature::sign(key_alg, key, "input");
    REQUIRE(sig);
    for (const keys::Alg alg : keys::all_algs()) {
      if (alg == key_alg) {
        continue;
      }
      CAPTURE(alg_name(alg));
      CAPTURE(alg_name(key_alg));
      CHECK(error_of(signature::verify(alg, key, "input", *sig)) == Errc::unsupported);
      const auto other = signature::sign(alg, key, "input");
      REQUIRE_FALSE(other);
      CHECK(other.error().code == Errc::unsupported);
    }
  }
}

TEST_CASE("signature: the same RSA key bound to PS256 refuses RS256 signatures") {
  const keys::Key& rs = key_for(keys::Alg::RS256);
  const auto ps = keys::Key::from_pem(*rs.private_pem(), keys::Alg::PS256);
  REQUIRE(ps);
  const auto rs_sig = signature::sign(keys::Alg::RS256, rs, "input");
  CHECK(error_of(signature::verify(keys::Alg::PS256, *ps, "input", *rs_sig)) == Errc::bad_signature);
  const auto ps_sig = signature::sign(keys::Alg::PS256, *ps, "input");
  CHECK(error_of(signature::verify(keys::Alg::RS256, rs, "input", *ps_sig)) == Errc::bad_signature);
}

TEST_CASE("signature: wrong signature lengths are bad signatures") {
  for (const keys::Alg alg : keys::all_algs()) {
    CAPTURE(alg_name(alg));
    const keys::Key& key = key_for(alg);
    const auto sig = *signature::sign(alg, key, "input");
    for (const std::string& bad : {std::string(), sig.substr(1), sig.substr(0, sig.size() - 1), sig + '\0',
                                   std::string(1, '\0') + sig, sig + sig, sig.substr(0, 16)}) {
      CAPTURE(bad.size());
      const auto result = signature::verify(alg, key, "input", bad);
      CHECK(error_of(result) == Errc::bad_signature);
      CHECK(result.error().message.find("must be " + std::to_string(key.signature_size()) + " bytes")
            != std::string::npos);
    }
  }
}

TEST_CASE("signature: ECDSA refuses DER-encoded signatures") {
  const keys::Key& key = key_for(keys::Alg::ES256);
  const auto raw = *signature::sign(keys::Alg::ES256, key, "input");
  // A DER SEQUENCE of two INTEGERs is 70-72 bytes: never the 64 JWS requires.
  std::string der = "\x30\x44\x02\x20" + raw.substr(0, 32) + "\x02\x20" + raw.substr(32);
  CHECK(error_of(signature::verify(keys::Alg::ES256, key, "input", der)) == Errc::bad_signature);
  CHECK(error_of(signature::verify(keys::Alg::ES256, key, "input", std::string(64, '\0')))
        == Errc::bad_signature);
}

TEST_CASE("signature: PS256 requires a 32-byte salt") {
  const auto key = keys::Key::from_pem(*key_for(keys::Alg::RS256).private_pem(), keys::Alg::PS256);
  REQUIRE(key);
  CHECK(signature::verify(keys::Alg::PS256, *key, "input", pss_sign(*key, "input", 32)));
  for (const int salt : {0, 20, 31, 33, 64}) {
    CAPTURE(salt);
    CHECK(error_of(signature::verify(keys::Alg::PS256, *key, "input", pss_sign(*key, "input", salt)))
          == Errc::bad_signature);
  }
  // PSS is randomised: two signatures of the same input differ.
  CHECK(*signature::sign(keys::Alg::PS256, *key, "input")
        != *signature::sign(keys::Alg::PS256, *key, "input"));
}

TEST_CASE("signature: an RSA public key is never an HMAC secret") {
  const auto rsa_public = key_for(keys::Alg::RS256).public_only();
  REQUIRE(rsa_public);
  const auto pem = test::public_pem(*rsa_public);
  REQUIRE(pem);
  // The classic confusion attack: HS256 keyed with the published PEM.
  const auto forged_key = keys::Key::from_secret(*pem);
  REQUIRE(forged_key);
  const auto forged = signature::sign(keys::Alg::HS256, *forged_key, "input");
  REQUIRE(forged);
  const auto result = signature::verify(keys::Alg::HS256, *rsa_public, "input", *forged);
  CHECK(error_of(result) == Errc::unsupported);
  CHECK(result.error().message.find("HS256") != std::string::npos);
  CHECK(rsa_public->secret().empty());
  CHECK(error_of(signature::verify(keys::Alg::HS256, key_for(keys::Alg::ES256), "input", *forged))
        == Errc::unsupported);
  CHECK(error_of(signature::verify(keys::Alg::HS256, key_for(keys::Alg::EdDSA), "input", *forged))
        == Errc::unsupported);
}

TEST_CASE("signature: signing needs a private key") {
  for (const keys::Alg alg :
       {keys::Alg::RS256, keys::Alg::PS256, keys::Alg::ES256, keys::Alg::ES384, keys::Alg::EdDSA}) {
    CAPTURE(alg_name(alg));
    const auto pub = key_for(alg).public_only();
    REQUIRE(pub);
    const auto sig = signature::sign(alg, *pub, "input");
    REQUIRE_FALSE(sig);
    CHECK(sig.error().code == Errc::unsupported);
  }
}

TEST_CASE("signature: HMAC signatures are deterministic and keyed") {
  const auto a = keys::Key::from_secret(std::string(32, 'a'));
  const auto b = keys::Key::from_secret(std::string(32, 'b'));
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*signature::sign(keys::Alg::HS256, *a, "x") == *signature::sign(keys::Alg::HS256, *a, "x"));
  CHECK(error_of(signature::verify(keys::Alg::HS256, *b, "x", *signature::sign(keys::Alg::HS256, *a, "x")))
        == Errc::bad_signature);
}

TEST_CASE("signature: RFC 7515 appendix A examples" * doctest::test_suite("vectors")) {
  const auto vectors = claudegate::test::load_vectors("rfc/rfc7515_appendixA.json");
  if (!vectors) {
    return;
  }
  int checked = 0;
  for (const auto& v : (*vectors)["vectors"]) {
    const auto alg = keys::alg_from_name(v["alg"].get<std::string>());
    if (!alg) {
      CHECK((v["alg"] == "none" || v["alg"] == "ES512"));
      continue;
    }
    CAPTURE(v["section"].get<std::string>());
    check_known_answer(v["jwk"], *alg, v["compact"].get<std::string>());
    ++checked;
  }
  CHECK(checked == 3); // A.1 HS256, A.2 RS256, A.3 ES256
}

TEST_CASE("signature: RFC 7520 and RFC 8037 cookbook examples" * doctest::test_suite("vectors")) {
  for (const char* file : {"rfc/jose-cookbook/jws/4_1.rsa_v15_signature.json",
                           "rfc/jose-cookbook/jws/4_4.hmac-sha2_integrity_protection.json",
                           "rfc/jose-cookbook/curve25519/jws.json"}) {
    CAPTURE(file);
    const auto example = claudegate::test::load_vectors(file);
    if (!example) {
      return;
    }
    const auto alg = keys::alg_from_name((*example)["input"]["alg"].get<std::string>());
    REQUIRE(alg);
    check_known_answer((*example)["input"]["key"], *alg, (*example)["output"]["compact"].get<std::string>());
  }
}

TEST_CASE("signature: one key signs and verifies from many threads") {
  for (const keys::Alg alg : {keys::Alg::RS256, keys::Alg::ES256, keys::Alg::EdDSA, keys::Alg::HS256}) {
    CAPTURE(alg_name(alg));
    const keys::Key& key = key_for(alg);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&key, alg, t, &failures] {
        for (int i = 0; i < 50; ++i) {
          const std::string input = std::to_string(t) + "." + std::to_string(i);
          const auto sig = signature::sign(alg, key, input);
          if (!sig || !signature::verify(alg, key, input, *sig)
              || signature::verify(alg, key, input + "x", *sig)) {
            ++failures;
          }
        }
      });
    }
    for (auto& thread : threads) {
      thread.join();
    }
    CHECK(failures == 0);
  }
}
