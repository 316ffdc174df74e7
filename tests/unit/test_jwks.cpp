// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/jwks.hpp"

#include "scratch_dir.hpp"
#include "vectors.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

using namespace claudegate;

namespace {

keys::Key generated(keys::Alg alg) {
  auto key = keys::Key::generate(alg);
  REQUIRE(key);
  return std::move(*key);
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Errc error_of(const Result<keyset::KeySet>& set) {
  REQUIRE_FALSE(set);
  return set.error().code;
}

constexpr const char* k_secret_jwk =
    R"({"kty":"oct","kid":"hmac-1","k":"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg"})";

} // namespace

TEST_CASE("jwks: to_document publishes public keys only, never secrets") {
  const keys::Key rsa = generated(keys::Alg::RS256);
  const keys::Key ec = generated(keys::Alg::ES384);
  const keys::Key ed = generated(keys::Alg::EdDSA);
  const keys::Key hmac = generated(keys::Alg::HS256);
  const auto document = jwks::to_document({&rsa, &hmac, &ec, &ed, nullptr});
  REQUIRE(document["keys"].is_array());
  REQUIRE(document["keys"].size() == 3);
  for (const auto& jwk : document["keys"]) {
    for (const char* secret : {"d", "p", "q", "dp", "dq", "qi", "k"}) {
      CHECK_FALSE(jwk.contains(secret));
    }
    CHECK(jwk["use"] == "sig");
    CHECK(jwk["kty"] != "oct");
  }
  CHECK(document["keys"][0]["kid"] == rsa.kid());
  CHECK(document["keys"][0]["alg"] == "RS256");
  CHECK(document["keys"][0].contains("n"));
  CHECK(document["keys"][1]["crv"] == "P-384");
  CHECK(document["keys"][2]["crv"] == "Ed25519");
  CHECK(document.dump().find(std::string(hmac.secret())) == std::string::npos);
  CHECK(jwks::to_document({&hmac}) == nlohmann::json::parse(R"({"keys":[]})"));
}

TEST_CASE("jwks: a published document parses back to the same keys") {
  const keys::Key rsa = generated(keys::Alg::PS256);
  const keys::Key ec = generated(keys::Alg::ES256);
  const auto set = jwks::parse(jwks::to_document({&rsa, &ec}).dump(), jwks::AllowSymmetric::no);
  REQUIRE(set);
  CHECK(set->size() == 2);
  REQUIRE(set->find(rsa.kid()) != nullptr);
  CHECK(set->find(rsa.kid())->alg() == keys::Alg::PS256);
  CHECK_FALSE(set->find(rsa.kid())->has_private());
  REQUIRE(set->find(ec.kid()) != nullptr);
  CHECK(set->find(ec.kid())->alg() == keys::Alg::ES256);
}

TEST_CASE("jwks: parse keeps only public parts and the JWK's own kid") {
  const keys::Key ed = generated(keys::Alg::EdDSA);
  auto jwk = *ed.to_jwk(keys::IncludePrivate::yes);
  jwk["kid"] = "idp-key-2024";
  const auto set = jwks::parse(nlohmann::json{{"keys", {jwk}}}.dump(), jwks::AllowSymmetric::no);
  REQUIRE(set);
  REQUIRE(set->find("idp-key-2024") != nullptr);
  CHECK_FALSE(set->find("idp-key-2024")->has_private());
  CHECK(set->find("idp-key-2024")->kid() == ed.kid());
  CHECK(set->find(ed.kid()) == nullptr);
}

TEST_CASE("jwks: oct keys only in a private JWKS") {
  const std::string text = std::string(R"({"keys":[)") + k_secret_jwk + "]}";
  const auto public_set = jwks::parse(text, jwks::AllowSymmetric::no);
  REQUIRE(public_set);
  CHECK(public_set->empty());
  const auto private_set = jwks::parse(text, jwks::AllowSymmetric::yes);
  REQUIRE(private_set);
  REQUIRE(private_set->find("hmac-1") != nullptr);
  CHECK(private_set->find("hmac-1")->alg() == keys::Alg::HS256);
}

TEST_CASE("jwks: load_file refuses an oct key in a file others can access, saying why") {
  test::ScratchDir scratch;
  const auto path = scratch.path() / "jwks.json";
  const keys::Key rsa = generated(keys::Alg::RS256);
  const auto secret = nlohmann::json::parse(k_secret_jwk);
  { std::ofstream(path) << nlohmann::json{{"keys", {secret, *rsa.to_jwk(keys::IncludePrivate::no)}}}.dump(); }
  using std::filesystem::perms;
  for (const auto mode : {perms::owner_read | perms::owner_write | perms::group_read | perms::others_read,
                          perms::owner_read | perms::owner_write | perms::group_read}) {
    std::filesystem::permissions(path, mode);
    const auto loaded = jwks::load_file(path);
    REQUIRE_FALSE(loaded);
    CHECK(loaded.error().code == Errc::config);
    const auto& message = loaded.error().message;
    CAPTURE(message);
    CHECK(message.find("key hmac-1 is a secret (oct) in " + path.string()) != std::string::npos);
    CHECK(message.find(mode == (perms::owner_read | perms::owner_write | perms::group_read) ? "(mode 0640)"
                                                                                            : "(mode 0644)")
          != std::string::npos);
    CHECK(message.find("chmod 600 " + path.string()) != std::string::npos);
  }
  std::filesystem::permissions(path, perms::owner_read | perms::owner_write);
  const auto private_set = jwks::load_file(path);
  REQUIRE(private_set);
  CHECK(private_set->find("hmac-1") != nullptr);
  CHECK(private_set->size() == 2);
}

TEST_CASE("jwks: load_file takes a readable file of public keys, and says when it cannot read one") {
  test::ScratchDir scratch;
  const auto path = scratch.path() / "jwks.json";
  const keys::Key ec = generated(keys::Alg::ES256);
  { std::ofstream(path) << jwks::to_document({&ec}).dump(); }
  std::filesystem::permissions(path, std::filesystem::perms::owner_all | std::filesystem::perms::others_read);
  const auto set = jwks::load_file(path);
  REQUIRE(set);
  CHECK(set->find(ec.kid()) != nullptr);
  CHECK(error_of(jwks::load_file(scratch.path() / "missing.json")) == Errc::io);
}

TEST_CASE("jwks: skips keys not meant for signatures") {
  const keys::Key rsa = generated(keys::Alg::RS256);
  auto enc = *rsa.to_jwk(keys::IncludePrivate::no);
  enc["use"] = "enc";
  enc["alg"] = "RS256";
  auto ops = *generated(keys::Alg::ES256).to_jwk(keys::IncludePrivate::no);
  ops.erase("use");
  ops["key_ops"] = {"encrypt"};
  auto verify_ops = *generated(keys::Alg::EdDSA).to_jwk(keys::IncludePrivate::no);
  verify_ops.erase("use");
  verify_ops["key_ops"] = {"verify"};
  const auto set =
      jwks::parse(nlohmann::json{{"keys", {enc, ops, verify_ops}}}.dump(), jwks::AllowSymmetric::no);
  REQUIRE(set);
  CHECK(set->size() == 1);
  CHECK(set->find(verify_ops["kid"].get<std::string>()) != nullptr);
}

TEST_CASE("jwks: the alg member binds the key") {
  auto jwk = *generated(keys::Alg::RS256).to_jwk(keys::IncludePrivate::no);
  jwk["alg"] = "RS512";
  const auto set = jwks::parse(nlohmann::json{{"keys", {jwk}}}.dump(), jwks::AllowSymmetric::no);
  REQUIRE(set);
  CHECK(set->find(jwk["kid"].get<std::string>())->alg() == keys::Alg::RS512);
}

TEST_CASE("jwks: ignores unsupported keys next to usable ones (RFC 7517 section 5)") {
  const keys::Key rsa = generated(keys::Alg::RS256);
  const auto p521 = nlohmann::json::parse(R"({"kty":"EC","crv":"P-521","kid":"p521",
    "x":"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt",
    "y":"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1"})");
  const auto future = nlohmann::json::parse(R"({"kty":"PQC","kid":"future"})");
  const auto set =
      jwks::parse(nlohmann::json{{"keys", {p521, *rsa.to_jwk(keys::IncludePrivate::no), future}}}.dump(),
                  jwks::AllowSymmetric::no);
  REQUIRE(set);
  CHECK(set->size() == 1);
  CHECK(set->find(rsa.kid()) != nullptr);
  const auto only_unsupported =
      jwks::parse(nlohmann::json{{"keys", {p521, future}}}.dump(), jwks::AllowSymmetric::no);
  CHECK(error_of(only_unsupported) == Errc::unsupported);
  CHECK(only_unsupported.error().message.find("no usable signature key") != std::string::npos);
}

TEST_CASE("jwks: refuses malformed documents and keys") {
  for (const char* text :
       {"", "[]", "{}", R"({"keys":{}})", R"({"keys":[1]})", R"({"keys":[],"keys":[]})",
        R"({"keys":[{"kty":"RSA","n":"AQAB"}]})", R"({"keys":[{"kty":"EC","crv":"P-256"}]})",
        R"({"keys":[{"kty":"RSA","use":5}]})"}) {
    CAPTURE(text);
    CHECK(error_of(jwks::parse(text, jwks::AllowSymmetric::yes)) == Errc::malformed);
  }
  auto jwk = *generated(keys::Alg::ES256).to_jwk(keys::IncludePrivate::no);
  CHECK(error_of(jwks::parse(nlohmann::json{{"keys", {jwk, jwk}}}.dump(), jwks::AllowSymmetric::no))
        == Errc::malformed); // duplicate kid
  jwk["kid"] = 3;
  CHECK(error_of(jwks::parse(nlohmann::json{{"keys", {jwk}}}.dump(), jwks::AllowSymmetric::no))
        == Errc::malformed);
  const auto empty = jwks::parse(R"({"keys":[]})", jwks::AllowSymmetric::no);
  REQUIRE(empty);
  CHECK(empty->empty());
}

TEST_CASE("jwks: RFC 7520 cookbook keys load" * doctest::test_suite("vectors")) {
  const auto found = claudegate::test::vectors_path("rfc/jose-cookbook/jwk");
  if (!found) {
    return;
  }
  const auto& dir = *found;
  nlohmann::json all = {{"keys", nlohmann::json::array()}};
  for (const char* name : {"3_1.ec_public_key.json", "3_2.ec_private_key.json", "3_3.rsa_public_key.json",
                           "3_4.rsa_private_key.json", "3_5.symmetric_key_mac_computation.json",
                           "3_6.symmetric_key_encryption.json"}) {
    all["keys"].push_back(nlohmann::json::parse(read_text(dir / name)));
  }
  // The RSA public and private keys share a kid: load them as two documents.
  auto without_private_rsa = all;
  without_private_rsa["keys"].erase(3);
  const auto set = jwks::parse(without_private_rsa.dump(), jwks::AllowSymmetric::yes);
  REQUIRE(set);
  CHECK(set->size() == 2); // RSA 3.3 and HMAC 3.5; P-521 skipped, 3.6 is use:enc
  REQUIRE(set->find("bilbo.baggins@hobbiton.example") != nullptr);
  CHECK(set->find("bilbo.baggins@hobbiton.example")->alg() == keys::Alg::RS256);
  REQUIRE(set->find("018c0ae5-4d9b-471b-bfd6-eef314bc7037") != nullptr);
  CHECK(set->find("018c0ae5-4d9b-471b-bfd6-eef314bc7037")->alg() == keys::Alg::HS256);

  const auto private_rsa =
      jwks::parse(nlohmann::json{{"keys", {all["keys"][3]}}}.dump(), jwks::AllowSymmetric::no);
  REQUIRE(private_rsa);
  const keys::Key* rsa = private_rsa->find("bilbo.baggins@hobbiton.example");
  REQUIRE(rsa != nullptr);
  CHECK_FALSE(rsa->has_private());
  CHECK(rsa->kid() == set->find("bilbo.baggins@hobbiton.example")->kid());
}
