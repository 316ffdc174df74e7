// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/keys.hpp"

#include "jose_support.hpp"
#include "vectors.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace claudegate;

namespace {

// Made with the openssl CLI (genrsa -traditional, ecparam -genkey -noout, genpkey, pkey -pubout).
constexpr const char* k_rsa_pkcs1 = R"(-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAzuksw7l7jObWfwRknRYu4HqJbJrd5NLLAOtuOc3tnl6QEoL+
CAsROeS32x7ROP0JFUMxRprIYWVxfTllDqjhGwgfOYJoAcUjTVTlQX/unVPbQ+Lo
01gbFkvAJG+IHj2S6FEeduXENO6RoezA35vf9MBUCzmIzbyN60T+hqQYqj/j3TBz
mi7V1D6TonA6/58HqzMExaP1fWCnbWAKnoTGOx83HqRy4hcqZaiGSx0Tx8xTKs6F
Swd3oiBgajA1ILoa5r1/zN3if1L5GEqSXPLf2Fn3cEUtXowf1IWJ95LO6jnVAJ7V
7vG+HqNbRiTwreCkZ1ENAi+rHt56+budXvn8qwIDAQABAoIBAGTycjqTdenKfX++
vu+88OXoIr/v1q5bAVvTgRWGmJWZgSTm79UwwRjDs8eeA2mQWiwbeiD+RyDtgy8b
H2jFj/3GOqWuL9wdOBn0f10zc1Eipmk6fWkPJTf9gSLFn11RoSji2sAbXVyNwFOF
1JvDysH4S4ima04k3gCYyq0ZxkbYwEkvVDSPC0JCG8D9WKcsG7TSirH6Bg+UupSd
u6tS67qOo+r5BcjD3KreEB2Ca1dVUWW/rBJ0tM3sjOq5JlZ2XoeeHny98K2UA2S0
C7BMrQwJNXskUdVaeQpcm/dxEctUGHK61sfiXFNrDb5XiimIKEWU6XnlN9vu0E+F
xzYeu0ECgYEA69S+KCFPkKSyoMPdqXN9WcwBJxU/CyEHEZ/RVOrSw188bBD7n8p9
xS+5CtF7DsQB3FHsKXntqb4LQTcG55Up3NcNigUdR560suXGyT9LEbvnbEAF6qcA
zTVoMemU3FFT1T1GFxsg3jIjoTkfKmnugOr7bf82tebhQDx83+LWUxsCgYEA4JtB
v40mj8eoyb09mzsp5yB+bZPq1PyNxTDR0Wl4Z2inQMSh8u2A+uT73lfG8FP2dk9r
gvOaRDzxoVwCjxbrRLkJJtZWOBzvCTrk4qdhZrGCsE3G1cBE1I95BAzMeTtBVs2d
4KQeunBrSOx9Z1TqxjIrMbdisZpBcWOSTmMxBbECgYEAmy7J1nRc++w0ku9wDBIv
+Qfx9jrX2kXodeN5huxiticUBnSCb1p6ume11vWTiVrXcpgB1CUki96/XzGLfJY+
DtEAWsMUyk0X0OS8ky7wAgJovWW/vvIX5/Dt2HJA/10Q0i/Y0FmMnknWAkApTuqY
BAMcYfxfjwEXVgK3lUeaCuMCgYBbiwvuHYKFAXRq3QV5+lAm0piU4r/IlTLXFwG9
X0Zip0Xb4Qi8sU5rc96wDYiYtS/zooUIN289trUo9g5Y8ZdsSBpRyPQVJL3MPkPB
mUTajSjd4KVUw2uKUvuYyfqgwqTr0xwwzdN0W5NugmzOK88QfqwaNEs2Zc+cfl/I
MSdu0QKBgQCk+xtKkH1mAjnmm1OZvAvrIa3kKShWxrQ/ahOilxZWzazaWTtntCDm
O0RN9apjqmCF0xKbaBiIfK8FdCNjmFuC6BiiRfUkm21w/Nwlp9207PqpEIyDb7rO
yzJ/Yj4mVEmZTTNgio13RYjGQHTItgXGREgyU1XY71cKBtCVa/UFIg==
-----END RSA PRIVATE KEY-----
)";

constexpr const char* k_rsa_pub = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAzuksw7l7jObWfwRknRYu
4HqJbJrd5NLLAOtuOc3tnl6QEoL+CAsROeS32x7ROP0JFUMxRprIYWVxfTllDqjh
GwgfOYJoAcUjTVTlQX/unVPbQ+Lo01gbFkvAJG+IHj2S6FEeduXENO6RoezA35vf
9MBUCzmIzbyN60T+hqQYqj/j3TBzmi7V1D6TonA6/58HqzMExaP1fWCnbWAKnoTG
Ox83HqRy4hcqZaiGSx0Tx8xTKs6FSwd3oiBgajA1ILoa5r1/zN3if1L5GEqSXPLf
2Fn3cEUtXowf1IWJ95LO6jnVAJ7V7vG+HqNbRiTwreCkZ1ENAi+rHt56+budXvn8
qwIDAQAB
-----END PUBLIC KEY-----
)";

constexpr const char* k_ec_sec1 = R"(-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIOIUv96PNlFn+85J22vOlj6DDKs7C5XTc4wGA8QI2eJloAoGCCqGSM49
AwEHoUQDQgAEtQHJn/57kEX+aAGhV9LGhLzra9YBNWpMrRg80vWUXF+gTU4f3s0C
fkWiOipVc2M0B6IBwmG6ULVY95tQv5uOnQ==
-----END EC PRIVATE KEY-----
)";

constexpr const char* k_ec_pub = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtQHJn/57kEX+aAGhV9LGhLzra9YB
NWpMrRg80vWUXF+gTU4f3s0CfkWiOipVc2M0B6IBwmG6ULVY95tQv5uOnQ==
-----END PUBLIC KEY-----
)";

constexpr const char* k_ec384_sec1 = R"(-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDAcNxf2AvPsaNuD7c9Hm8nO8LeNykW4msB7F9axLBwz44NtvAAxcMHm
nvry9eHLriqgBwYFK4EEACKhZANiAASgpXFIIaXB6vQKQZkOP4FY5KFEmS15YWy8
IHeuxR9kt7Wu9xt3UGpFdej8ifuj7QKV6CCAgnDs7q3G2PlYGedCwFY/c8DSnZf/
yAnXCcAvp335fyCjnX3rxi9yoqIpccA=
-----END EC PRIVATE KEY-----
)";

constexpr const char* k_rsa1024 = R"(-----BEGIN PRIVATE KEY-----
MIICeAIBADANBgkqhkiG9w0BAQEFAASCAmIwggJeAgEAAoGBANzCqOQw725dCEaC
EdOH2q7ugvy8l7AAFCtP2i3IKNg3xj93yzZ08pXfoDR/FBCK5sRxPJUtdwhY/3KL
4zg/7vuURFjkzrh8v8PS6BcmF3GM9KalqY3hkLWSWdsEPHYBN2l44Cp9Yuk4qMbR
6uTBWYxrW/0gn43Af3h/aKSDjiBNAgMBAAECgYEAketdZY/vA10dFjXtgIuhAdYH
4PTrstsqecKLbY2Laffb46HUQcelfWlWZLzGz3RwutI6gESQFIV3PAi5BTpFRO0I
+T8u2JE3WJXMIG8Li8IHW+k7YnKy2O/GxWlBGiQ/U94Wn4x/SxDnTH3OrZTZIE9u
OpmSS6oyV6VpojE8coECQQD5OuHvesMSPz8hLvkym2gtE1kesmEg0l9MZFrEPvj8
KzcBZ6mL80bxrFnnPn4xvdQbZInkRTfVyLUG0jSYxr2tAkEA4sHNeYCpI8ytWIlT
Bk6OoLVOTcUs2NLVdP7fYJ1D4JUU5HET0Jpef5Yjkkmqda80AP+rl2E5kLvMrH8P
mjoBIQJBAJQ3t2wTZvVwFZwncl3tXCwKaKK/1NGPKsuklvJEvRBCpwi33HX1bQiG
xkSmvqfYS88qoHLX01fZcAcpdcwxzVUCQQC8Ihs+YbbzUs/HkzflFaxUPdjXwW3x
/wrG5OekGxbD8CzDU+YivtEEfibJKoFY3qIA6h8Nm8bNBGNOAqWJSfLBAkBbw6OC
mBlUZpVJn5l2rFgX0ihgltZaFfrsvvy+oNFeYrf9Kz/9zVUKmZtZRIoI2qwqajo9
RlDk/0JDhn1zSXyV
-----END PRIVATE KEY-----
)";

constexpr const char* k_ed448 = R"(-----BEGIN PRIVATE KEY-----
MEcCAQAwBQYDK2VxBDsEOTS2sp0NCsJHJbGwOKujfInHusuPCrSor49lSYTQVwT9
Y50Ti1qeJMaZfv4GMWN0QzihZFOdQuNzQg==
-----END PRIVATE KEY-----
)";

constexpr const char* k_k1 = R"(-----BEGIN EC PRIVATE KEY-----
MHQCAQEEIK63rzUbtmKYmydxMnd5kFMvQ6vbXLocf1aQZMt1sk8NoAcGBSuBBAAK
oUQDQgAEhH+lni/zEv/5hri7AQj2hduq87gnc3+S61UOIaD8fLhnqG0emxCoIemh
Qk/8WBtUphK1o7BGkzjsj2SUBm5DJw==
-----END EC PRIVATE KEY-----
)";

constexpr const char* k_ec_with_params = R"(-----BEGIN EC PARAMETERS-----
BggqhkjOPQMBBw==
-----END EC PARAMETERS-----
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIMjTQEzDGIRaPIlm9/dGjAqX5j5JyDGTBqHcJNpz/xc4oAoGCCqGSM49
AwEHoUQDQgAE3CffqMdzOQmwLK3hpD1zL08Ps0vpWCijbopLHuRxGTczmSy349Me
tFrMTpyUGotSaKOf/IqoJQbME/E/oW0qQA==
-----END EC PRIVATE KEY-----
)";

constexpr const char* k_rsa_pkcs1_pub = R"(-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAzuksw7l7jObWfwRknRYu4HqJbJrd5NLLAOtuOc3tnl6QEoL+CAsR
OeS32x7ROP0JFUMxRprIYWVxfTllDqjhGwgfOYJoAcUjTVTlQX/unVPbQ+Lo01gb
FkvAJG+IHj2S6FEeduXENO6RoezA35vf9MBUCzmIzbyN60T+hqQYqj/j3TBzmi7V
1D6TonA6/58HqzMExaP1fWCnbWAKnoTGOx83HqRy4hcqZaiGSx0Tx8xTKs6FSwd3
oiBgajA1ILoa5r1/zN3if1L5GEqSXPLf2Fn3cEUtXowf1IWJ95LO6jnVAJ7V7vG+
HqNbRiTwreCkZ1ENAi+rHt56+budXvn8qwIDAQAB
-----END RSA PUBLIC KEY-----
)";

// RFC 7638 §3.1.
constexpr const char* k_rfc7638_jwk = R"({"kty":"RSA",
  "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
  "e":"AQAB","alg":"RS256","kid":"2011-04-29"})";

// RFC 8037 A.1/A.3.
constexpr const char* k_rfc8037_jwk = R"({"kty":"OKP","crv":"Ed25519",
  "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";

json::Json parse(const char* text) {
  return json::Json::parse(text);
}

keys::Key must(Result<keys::Key> key) {
  if (!key) {
    FAIL("unexpected error: " << key.error().message);
  }
  return std::move(*key);
}

Errc error_of(const Result<keys::Key>& key) {
  REQUIRE_FALSE(key);
  return key.error().code;
}

std::size_t expected_signature_size(keys::Alg alg, int rsa_bits) {
  switch (alg) {
  case keys::Alg::ES256:
    return 64;
  case keys::Alg::ES384:
    return 96;
  case keys::Alg::EdDSA:
    return 64;
  case keys::Alg::HS256:
    return 32;
  default:
    return static_cast<std::size_t>(rsa_bits / 8);
  }
}

void check_asymmetric_round_trips(const keys::Key& key) {
  const auto pem = key.private_pem();
  REQUIRE(pem);
  CHECK(pem->rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
  const auto from_private = must(keys::Key::from_pem(*pem, key.alg()));
  CHECK(from_private.kid() == key.kid());
  CHECK(from_private.has_private());

  const auto pub_pem = test::public_pem(key);
  REQUIRE(pub_pem);
  CHECK(pub_pem->rfind("-----BEGIN PUBLIC KEY-----", 0) == 0);
  const auto from_public = must(keys::Key::from_pem(*pub_pem, key.alg()));
  CHECK(from_public.kid() == key.kid());
  CHECK_FALSE(from_public.has_private());
  REQUIRE_FALSE(from_public.private_pem());
  CHECK(from_public.private_pem().error().code == Errc::unsupported);

  const auto private_jwk = key.to_jwk(keys::IncludePrivate::yes);
  REQUIRE(private_jwk);
  CHECK(private_jwk->contains("d"));
  const auto from_jwk = must(keys::Key::from_jwk(*private_jwk));
  CHECK(from_jwk.kid() == key.kid());
  CHECK(from_jwk.alg() == key.alg());
  CHECK(from_jwk.has_private());
  CHECK(from_jwk.to_jwk(keys::IncludePrivate::yes).value() == *private_jwk);

  const auto public_jwk = key.to_jwk(keys::IncludePrivate::no);
  REQUIRE(public_jwk);
  for (const char* secret : {"d", "p", "q", "dp", "dq", "qi", "k"}) {
    CHECK_FALSE(public_jwk->contains(secret));
  }
  CHECK((*public_jwk)["kid"] == key.kid());
  CHECK((*public_jwk)["alg"] == alg_name(key.alg()));
  CHECK((*public_jwk)["use"] == "sig");
  const auto from_public_jwk = must(keys::Key::from_jwk(*public_jwk));
  CHECK(from_public_jwk.kid() == key.kid());
  CHECK_FALSE(from_public_jwk.has_private());
}

} // namespace

TEST_CASE("keys: algorithm names are exact and case-sensitive") {
  CHECK(keys::all_algs().size() == 8);
  for (const keys::Alg alg : keys::all_algs()) {
    CHECK(keys::alg_from_name(alg_name(alg)) == alg);
  }
  CHECK(alg_name(keys::Alg::EdDSA) == "EdDSA");
  for (const char* name : {"none", "None", "rs256", "RS256 ", "HS512", "ES512", "PS384", "eddsa", ""}) {
    CAPTURE(name);
    CHECK_FALSE(keys::alg_from_name(name));
  }
}

TEST_CASE("keys: key type names are the JWK kty values") {
  CHECK(key_type_name(keys::KeyType::rsa) == "RSA");
  CHECK(key_type_name(keys::KeyType::ec) == "EC");
  CHECK(key_type_name(keys::KeyType::okp) == "OKP");
  CHECK(key_type_name(keys::KeyType::oct) == "oct");
}

TEST_CASE("keys: generate and round-trip every asymmetric algorithm") {
  for (const keys::Alg alg : keys::all_algs()) {
    if (alg == keys::Alg::HS256) {
      continue;
    }
    CAPTURE(alg_name(alg));
    const auto key = must(keys::Key::generate(alg));
    CHECK(key.alg() == alg);
    CHECK(key.has_private());
    CHECK_FALSE(key.is_symmetric());
    CHECK(key.evp() != nullptr);
    CHECK(key.kid().size() == 43);
    CHECK(key.signature_size() == expected_signature_size(alg, 2048));
    check_asymmetric_round_trips(key);
  }
}

TEST_CASE("keys: key types and sizes") {
  CHECK(must(keys::Key::generate(keys::Alg::RS256)).type() == keys::KeyType::rsa);
  CHECK(must(keys::Key::generate(keys::Alg::ES256)).bits() == 256);
  CHECK(must(keys::Key::generate(keys::Alg::ES384)).bits() == 384);
  CHECK(must(keys::Key::generate(keys::Alg::ES384)).type() == keys::KeyType::ec);
  CHECK(must(keys::Key::generate(keys::Alg::EdDSA)).type() == keys::KeyType::okp);
  const auto rsa3072 = must(keys::Key::generate(keys::Alg::PS256, 3072));
  CHECK(rsa3072.bits() == 3072);
  CHECK(rsa3072.signature_size() == 384);
  const auto rsa4096 = must(keys::Key::generate(keys::Alg::RS512, 4096));
  CHECK(rsa4096.bits() == 4096);
  CHECK(rsa4096.signature_size() == 512);
}

TEST_CASE("keys: generate refuses unsupported RSA sizes") {
  for (const int bits : {0, 1024, 2047, 2049, 8192}) {
    CAPTURE(bits);
    CHECK(error_of(keys::Key::generate(keys::Alg::RS256, bits)) == Errc::config);
  }
}

TEST_CASE("keys: HS256 keys are 32 random bytes and never public") {
  const auto key = must(keys::Key::generate(keys::Alg::HS256));
  const auto other = must(keys::Key::generate(keys::Alg::HS256));
  CHECK(key.is_symmetric());
  CHECK(key.type() == keys::KeyType::oct);
  CHECK(key.secret().size() == 32);
  CHECK(key.bits() == 256);
  CHECK(key.secret() != other.secret());
  CHECK(key.kid() != other.kid());
  CHECK(key.evp() == nullptr);
  CHECK(key.signature_size() == 32);
  CHECK(key.to_jwk(keys::IncludePrivate::no).error().code == Errc::unsupported);
  CHECK(key.private_pem().error().code == Errc::unsupported);
  CHECK(test::public_pem(key).error().code == Errc::unsupported);
  const auto jwk = key.to_jwk(keys::IncludePrivate::yes);
  REQUIRE(jwk);
  CHECK((*jwk)["kty"] == "oct");
  CHECK((*jwk)["alg"] == "HS256");
  const auto back = must(keys::Key::from_jwk(*jwk));
  CHECK(back.secret() == key.secret());
  CHECK(back.kid() == key.kid());
  CHECK(must(key.public_only()).secret() == key.secret());
}

TEST_CASE("keys: from_secret requires 32 bytes and HS256") {
  CHECK(must(keys::Key::from_secret(std::string(32, 'k'))).alg() == keys::Alg::HS256);
  CHECK(error_of(keys::Key::from_secret(std::string(31, 'k'))) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_secret("")) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_secret(std::string(64, 'k'), keys::Alg::RS256)) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_secret(std::string(64, 'k'), keys::Alg::EdDSA)) == Errc::unsupported);
}

TEST_CASE("keys: thumbprint kid matches RFC 7638 3.1") {
  const auto key = must(keys::Key::from_jwk(parse(k_rfc7638_jwk)));
  CHECK(key.kid() == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  CHECK(key.alg() == keys::Alg::RS256);
  CHECK_FALSE(key.has_private());
  CHECK(key.bits() == 2048);
  CHECK(key.signature_size() == 256);
}

TEST_CASE("keys: Ed25519 JWK of RFC 8037") {
  const auto key = must(keys::Key::from_jwk(parse(k_rfc8037_jwk)));
  CHECK(key.kid() == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  CHECK(key.alg() == keys::Alg::EdDSA);
  CHECK(key.has_private());
  const auto jwk = key.to_jwk(keys::IncludePrivate::yes);
  REQUIRE(jwk);
  CHECK((*jwk)["d"] == "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
  CHECK((*jwk)["x"] == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
  CHECK((*jwk)["crv"] == "Ed25519");
}

TEST_CASE("keys: imports PKCS#1 RSA PEM made by openssl genrsa") {
  const auto key = must(keys::Key::from_pem(k_rsa_pkcs1));
  CHECK(key.alg() == keys::Alg::RS256);
  CHECK(key.bits() == 2048);
  CHECK(key.has_private());
  CHECK(*test::public_pem(key) == k_rsa_pub);
  CHECK(must(keys::Key::from_pem(k_rsa_pub)).kid() == key.kid());
  CHECK(must(keys::Key::from_pem(k_rsa_pkcs1, keys::Alg::PS256)).alg() == keys::Alg::PS256);
  CHECK(must(keys::Key::from_pem(k_rsa_pkcs1, keys::Alg::RS384)).alg() == keys::Alg::RS384);
  check_asymmetric_round_trips(key);
}

TEST_CASE("keys: imports SEC1 EC PEM made by openssl ecparam") {
  const auto key = must(keys::Key::from_pem(k_ec_sec1));
  CHECK(key.alg() == keys::Alg::ES256);
  CHECK(key.has_private());
  CHECK(*test::public_pem(key) == k_ec_pub);
  CHECK(must(keys::Key::from_pem(k_ec_pub)).kid() == key.kid());
  const auto p384 = must(keys::Key::from_pem(k_ec384_sec1));
  CHECK(p384.alg() == keys::Alg::ES384);
  check_asymmetric_round_trips(p384);
}

TEST_CASE("keys: imports what other openssl commands write") {
  // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
  const auto ec = must(keys::Key::from_pem(k_ec_with_params));
  CHECK(ec.alg() == keys::Alg::ES256);
  CHECK(ec.has_private());
  // `openssl rsa -RSAPublicKey_out` writes a PKCS#1 public key.
  const auto rsa = must(keys::Key::from_pem(k_rsa_pkcs1_pub));
  CHECK_FALSE(rsa.has_private());
  CHECK(rsa.kid() == must(keys::Key::from_pem(k_rsa_pkcs1)).kid());
}

TEST_CASE("keys: an algorithm must fit its key") {
  CHECK(error_of(keys::Key::from_pem(k_rsa_pkcs1, keys::Alg::ES256)) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_pem(k_rsa_pkcs1, keys::Alg::HS256)) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_pem(k_rsa_pub, keys::Alg::HS256)) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_pem(k_rsa_pkcs1, keys::Alg::EdDSA)) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_pem(k_ec_sec1, keys::Alg::ES384)) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_pem(k_ec_sec1, keys::Alg::RS256)) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_pem(k_ec_sec1, keys::Alg::HS256)) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_pem(k_ec384_sec1, keys::Alg::ES256)) == Errc::unsupported);
  const auto ed = must(keys::Key::generate(keys::Alg::EdDSA));
  CHECK(error_of(keys::Key::from_pem(*test::public_pem(ed), keys::Alg::ES256)) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_pem(*test::public_pem(ed), keys::Alg::HS256)) == Errc::unsupported);
}

TEST_CASE("keys: refuses small RSA keys and unsupported curves") {
  const auto small = keys::Key::from_pem(k_rsa1024);
  CHECK(error_of(small) == Errc::unsupported);
  CHECK(small.error().message.find("minimum 2048") != std::string::npos);
  CHECK(error_of(keys::Key::from_pem(k_ed448)) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_pem(k_k1)) == Errc::unsupported);
}

TEST_CASE("keys: refuses unparsable and encrypted PEM") {
  CHECK(error_of(keys::Key::from_pem("")) == Errc::malformed);
  CHECK(error_of(keys::Key::from_pem("not a key")) == Errc::malformed);
  CHECK(error_of(keys::Key::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
        == Errc::malformed);
  CHECK(error_of(keys::Key::from_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"))
        == Errc::unsupported);
  CHECK(error_of(keys::Key::from_pem(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n"))
        == Errc::unsupported);
  CHECK(error_of(keys::Key::from_pem(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"))
        == Errc::malformed);
}

TEST_CASE("keys: public_only drops the private part") {
  for (const keys::Alg alg : {keys::Alg::RS256, keys::Alg::ES256, keys::Alg::EdDSA}) {
    const auto key = must(keys::Key::generate(alg));
    const auto pub = must(key.public_only());
    CHECK_FALSE(pub.has_private());
    CHECK(pub.kid() == key.kid());
    CHECK(pub.alg() == alg);
    CHECK_FALSE(pub.to_jwk(keys::IncludePrivate::yes)->contains("d"));
  }
}

TEST_CASE("keys: JWK alg member binds the key") {
  auto jwk = parse(k_rfc7638_jwk);
  CHECK(must(keys::Key::from_jwk(jwk)).alg() == keys::Alg::RS256);
  CHECK(error_of(keys::Key::from_jwk(jwk, keys::Alg::PS256)) == Errc::unsupported);
  jwk["alg"] = "PS256";
  CHECK(must(keys::Key::from_jwk(jwk)).alg() == keys::Alg::PS256);
  for (const char* alg : {"none", "HS256", "ES256", "rs256", "RSA-OAEP"}) {
    CAPTURE(alg);
    jwk["alg"] = alg;
    CHECK(error_of(keys::Key::from_jwk(jwk)) == Errc::unsupported);
  }
  jwk["alg"] = 7;
  CHECK(error_of(keys::Key::from_jwk(jwk)) == Errc::malformed);
  jwk.erase("alg");
  CHECK(must(keys::Key::from_jwk(jwk, keys::Alg::RS512)).alg() == keys::Alg::RS512);
}

TEST_CASE("keys: refuses malformed JWKs") {
  const auto rsa = parse(k_rfc7638_jwk);
  CHECK(error_of(keys::Key::from_jwk(json::Json::array())) == Errc::malformed);
  CHECK(error_of(keys::Key::from_jwk(json::Json{{"n", "AQAB"}})) == Errc::malformed);
  CHECK(error_of(keys::Key::from_jwk(json::Json{{"kty", "RSX"}})) == Errc::unsupported);
  auto bad = rsa;
  bad.erase("e");
  CHECK(error_of(keys::Key::from_jwk(bad)) == Errc::malformed);
  bad = rsa;
  bad["n"] = 5;
  CHECK(error_of(keys::Key::from_jwk(bad)) == Errc::malformed);
  bad = rsa;
  bad["n"] = rsa["n"].get<std::string>() + "=";
  CHECK(error_of(keys::Key::from_jwk(bad)) == Errc::malformed);
  bad = rsa;
  bad["d"] = "AQAB";
  bad["p"] = "AQAB";
  CHECK(error_of(keys::Key::from_jwk(bad)) == Errc::malformed);
  bad = rsa;
  bad["oth"] = json::Json::array();
  CHECK(error_of(keys::Key::from_jwk(bad)) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_jwk(json::Json{{"kty", "oct"}, {"k", "c2hvcnQ"}})) == Errc::unsupported);
  CHECK(error_of(keys::Key::from_jwk(json::Json{{"kty", "oct"}})) == Errc::malformed);
}

TEST_CASE("keys: refuses bad EC and OKP JWKs") {
  const auto good = must(keys::Key::generate(keys::Alg::ES256)).to_jwk(keys::IncludePrivate::yes).value();
  auto bad = good;
  bad["crv"] = "P-521";
  CHECK(error_of(keys::Key::from_jwk(bad)) == Errc::unsupported);
  bad = good;
  bad["x"] = "AQAB";
  CHECK(error_of(keys::Key::from_jwk(bad)) == Errc::malformed);
  bad = good;
  bad["y"] = good["x"];
  bad.erase("d");
  CHECK(error_of(keys::Key::from_jwk(bad)) == Errc::malformed); // not on the curve
  bad = good;
  bad["d"] = must(keys::Key::generate(keys::Alg::ES256)).to_jwk(keys::IncludePrivate::yes).value()["d"];
  CHECK(error_of(keys::Key::from_jwk(bad)) == Errc::malformed); // d does not match x, y

  auto okp = parse(k_rfc8037_jwk);
  okp["crv"] = "X25519";
  CHECK(error_of(keys::Key::from_jwk(okp)) == Errc::unsupported);
  okp = parse(k_rfc8037_jwk);
  okp["d"] = must(keys::Key::generate(keys::Alg::EdDSA)).to_jwk(keys::IncludePrivate::yes).value()["d"];
  CHECK(error_of(keys::Key::from_jwk(okp)) == Errc::malformed);
  okp = parse(k_rfc8037_jwk);
  okp["x"] = "AQAB";
  CHECK(error_of(keys::Key::from_jwk(okp)) == Errc::malformed);
}

TEST_CASE("keys: RSA JWK with only n, e, d signs") {
  auto jwk = must(keys::Key::generate(keys::Alg::RS256)).to_jwk(keys::IncludePrivate::yes).value();
  for (const char* member : {"p", "q", "dp", "dq", "qi"}) {
    jwk.erase(member);
  }
  const auto key = must(keys::Key::from_jwk(jwk));
  CHECK(key.has_private());
  CHECK(key.to_jwk(keys::IncludePrivate::yes)->contains("d"));
  CHECK_FALSE(key.to_jwk(keys::IncludePrivate::yes)->contains("p"));
}

TEST_CASE("keys: RFC 7520 cookbook JWKs" * doctest::test_suite("vectors")) {
  const auto rsa_public = claudegate::test::load_vectors("rfc/jose-cookbook/jwk/3_3.rsa_public_key.json");
  const auto rsa_private = claudegate::test::load_vectors("rfc/jose-cookbook/jwk/3_4.rsa_private_key.json");
  const auto ec_public = claudegate::test::load_vectors("rfc/jose-cookbook/jwk/3_1.ec_public_key.json");
  const auto mac =
      claudegate::test::load_vectors("rfc/jose-cookbook/jwk/3_5.symmetric_key_mac_computation.json");
  if (!rsa_public || !rsa_private || !ec_public || !mac) {
    return;
  }
  const auto pub = must(keys::Key::from_jwk(*rsa_public));
  const auto priv = must(keys::Key::from_jwk(*rsa_private));
  CHECK(pub.kid() == priv.kid());
  CHECK(priv.has_private());
  CHECK(pub.bits() == 2048);
  CHECK(error_of(keys::Key::from_jwk(*ec_public)) == Errc::unsupported); // P-521 (ES512) is not supported
  const auto hmac = must(keys::Key::from_jwk(*mac));
  CHECK(hmac.alg() == keys::Alg::HS256);
  CHECK(hmac.secret().size() == 32);
}
