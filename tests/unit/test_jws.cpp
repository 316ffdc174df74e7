// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/jws.hpp"

#include "jose_support.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <memory>
#include <string>
#include <vector>

using namespace claudegate;
using namespace claudegate::test;

namespace {

constexpr std::string_view k_payload = R"({"sub":"alice","exp":1795428900})";

const keys::Key& hs_key() {
  return cached_key(keys::Alg::HS256);
}

std::string hs_header() {
  return R"({"alg":"HS256","typ":"at+jwt","kid":"k1"})";
}

std::string hs_token() {
  return raw_signed(hs_key(), hs_header(), k_payload);
}

Result<jws::DecodedToken> decode(std::string_view token) {
  return jws::decode(token);
}

// Decode, then check the signature with `key`: what token::verify does minus kid and claims.
Result<void> decode_and_verify(std::string_view token, const keys::Key& key) {
  auto decoded = jws::decode(token);
  if (!decoded) {
    return std::unexpected(decoded.error());
  }
  return jws::verify_signature(*decoded, key);
}

// Replace segment `index` (0, 1, 2) of a compact token.
std::string with_segment(std::string_view token, int index, std::string_view segment) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t dot = token.find('.'); dot != std::string_view::npos; dot = token.find('.', start)) {
    parts.emplace_back(token.substr(start, dot - start));
    start = dot + 1;
  }
  parts.emplace_back(token.substr(start));
  parts.at(static_cast<std::size_t>(index)) = segment;
  return parts[0] + "." + parts[1] + "." + parts[2];
}

std::string segment(std::string_view token, int index) {
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  if (index == 0) {
    return std::string(token.substr(0, first));
  }
  if (index == 1) {
    return std::string(token.substr(first + 1, second - first - 1));
  }
  return std::string(token.substr(second + 1));
}

struct DigestSignCtx {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// An ES256 signature in ASN.1 DER form (what OpenSSL produces), not JWS raw r‖s.
std::string der_signature(const keys::Key& key, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, DigestSignCtx> ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.evp()) == 1);
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  std::size_t size = 0;
  REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &size, data, input.size()) == 1);
  std::string out(size, '\0');
  REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &size, data, input.size())
          == 1);
  out.resize(size);
  return out;
}

} // namespace

TEST_CASE("jws: decodes a well-formed token") {
  const auto token = hs_token();
  const auto decoded = decode(token);
  REQUIRE_MESSAGE(decoded, message_of(decoded));
  CHECK(decoded->alg == keys::Alg::HS256);
  CHECK(decoded->kid == "k1");
  CHECK(decoded->typ == "at+jwt");
  CHECK(decoded->payload["sub"] == "alice");
  CHECK(decoded->signing_input == token.substr(0, token.rfind('.')));
  CHECK(decoded->signature.size() == 32);
  CHECK(code_of(jws::verify_signature(*decoded, hs_key())) == "ok");
}

TEST_CASE("jws: kid and typ are empty when absent") {
  const auto decoded = decode(raw_signed(hs_key(), R"({"alg":"HS256"})", k_payload));
  REQUIRE(decoded);
  CHECK(decoded->kid.empty());
  CHECK(decoded->typ.empty());
}

TEST_CASE("jws: rejects alg none and its case variants, with or without a signature") {
  for (std::string_view alg : {"none", "None", "NONE", "nOnE", "NoNe"}) {
    const auto header = R"({"alg":")" + std::string(alg) + R"(","kid":"k1"})";
    for (std::string_view sig : {std::string_view(), std::string_view("sig")}) {
      CAPTURE(alg);
      CAPTURE(sig.size());
      const auto r = decode(compact(header, k_payload, sig));
      CHECK(code_of(r) == "unsupported");
      CHECK(contains(message_of(r), alg));
    }
  }
}

TEST_CASE("jws: rejects algorithms we do not support, names are case-sensitive") {
  for (std::string_view alg : {"rs256", "hs256", "Hs256", "HS384", "HS512", "ES512", "PS384", "PS512", "RS1",
                               "ES256K", "Ed25519", "EDDSA", "", "HS256 ", " HS256"}) {
    CAPTURE(alg);
    const auto header = R"({"alg":")" + std::string(alg) + R"("})";
    const auto r = decode(compact(header, k_payload, std::string(32, 'x')));
    CHECK(code_of(r) == "unsupported");
    CHECK(contains(message_of(r), "RS256")); // lists what is supported
  }
}

TEST_CASE("jws: alg must be present and a string") {
  for (std::string_view header : {R"({"typ":"JWT"})", R"({"alg":["HS256"]})", R"({"alg":256})",
                                  R"({"alg":null})", R"({"alg":{"name":"HS256"}})", R"({"alg":true})"}) {
    CAPTURE(header);
    CHECK(code_of(decode(compact(header, k_payload, std::string(32, 'x')))) == "malformed");
  }
}

TEST_CASE("jws: refuses crit, b64, jku, x5u, jwk, x5c, zip and cty by name") {
  const std::pair<std::string_view, std::string_view> params[] = {
      {"crit", R"(["exp"])"},
      {"b64", "false"},
      {"jku", R"("https://evil.example/jwks.json")"},
      {"x5u", R"("https://evil.example/cert.pem")"},
      {"jwk", R"({"kty":"oct","k":"AAAA"})"},
      {"x5c", R"(["MIIB"])"},
      {"zip", R"("DEF")"},
      {"cty", R"("JWT")"},
  };
  for (const auto& [name, value] : params) {
    CAPTURE(name);
    const auto header =
        R"({"alg":"HS256","kid":"k1",")" + std::string(name) + R"(":)" + std::string(value) + "}";
    const auto r = decode(raw_signed(hs_key(), header, k_payload));
    CHECK(code_of(r) == "unsupported");
    CHECK(contains(message_of(r), "\"" + std::string(name) + "\""));
  }
}

TEST_CASE("jws: refuses unknown header parameters") {
  for (std::string_view name : {"foo", "Alg", "KID", "nonce", "epk", "x5t#S512", "enc"}) {
    CAPTURE(name);
    const auto header = R"({"alg":"HS256",")" + std::string(name) + R"(":"v"})";
    const auto r = decode(raw_signed(hs_key(), header, k_payload));
    CHECK(code_of(r) == "unsupported");
    CHECK(contains(message_of(r), name));
  }
}

TEST_CASE("jws: accepts the informational x5t and x5t#S256 that IdPs send") {
  const auto header = R"({"alg":"HS256","typ":"JWT","kid":"k1","x5t":"abc","x5t#S256":"def"})";
  CHECK(code_of(decode_and_verify(raw_signed(hs_key(), header, k_payload), hs_key())) == "ok");
}

TEST_CASE("jws: kid, typ and x5t must be strings") {
  for (std::string_view header : {R"({"alg":"HS256","kid":7})", R"({"alg":"HS256","kid":null})",
                                  R"({"alg":"HS256","kid":["a"]})", R"({"alg":"HS256","typ":1})",
                                  R"({"alg":"HS256","typ":{"t":"JWT"}})", R"({"alg":"HS256","x5t":false})"}) {
    CAPTURE(header);
    CHECK(code_of(decode(raw_signed(hs_key(), header, k_payload))) == "malformed");
  }
}

TEST_CASE("jws: duplicate member names in header or payload are malformed") {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {R"({"alg":"HS256","alg":"none"})", k_payload},
      {R"({"alg":"none","alg":"HS256"})", k_payload},
      {R"({"alg":"HS256","kid":"a","kid":"b"})", k_payload},
      {R"({"alg":"HS256"})", R"({"sub":"alice","sub":"admin","exp":1})"},
      {R"({"alg":"HS256"})", R"({"sub":"alice","exp":1,"ctx":{"role":"user","role":"admin"}})"},
      {R"({"alg":"HS256"})", R"({"a":[{"x":1,"x":2}],"exp":1})"},
  };
  for (const auto& [header, payload] : cases) {
    CAPTURE(header);
    CAPTURE(payload);
    const auto r = decode(compact(header, payload, std::string(32, 'x')));
    CHECK(code_of(r) == "malformed");
    CHECK(contains(message_of(r), "duplicate"));
  }
}

TEST_CASE("jws: header and payload must be JSON objects") {
  for (std::string_view json :
       {R"(["alg","HS256"])", R"("HS256")", "42", "null", "true", "", "{", "{}x", R"({"alg":"HS256",})"}) {
    CAPTURE(json);
    CHECK(code_of(decode(compact(json, k_payload, std::string(32, 'x')))) == "malformed");
    CHECK(code_of(decode(raw_signed(hs_key(), R"({"alg":"HS256"})", json))) == "malformed");
  }
}

TEST_CASE("jws: deep nesting and invalid UTF-8 are malformed") {
  const std::string deep = R"({"exp":1,"a":)" + std::string(40, '[') + std::string(40, ']') + "}";
  CHECK(code_of(decode(raw_signed(hs_key(), R"({"alg":"HS256"})", deep))) == "malformed");
  const std::string bad_utf8 = "{\"alg\":\"HS256\",\"kid\":\"\xff\xfe\"}";
  CHECK(code_of(decode(compact(bad_utf8, k_payload, std::string(32, 'x')))) == "malformed");
}

TEST_CASE("jws: a header or payload starting with a UTF-8 byte order mark is malformed") {
  const std::string bom = "\xEF\xBB\xBF";
  const std::string header = R"({"alg":"HS256"})";
  const std::string payload(k_payload);
  for (const auto& [h, p] : {std::pair{bom + header, payload}, std::pair{header, bom + payload}}) {
    CAPTURE(h);
    const auto r = decode(raw_signed(hs_key(), h, p)); // correctly signed: only the BOM is wrong
    CHECK(code_of(r) == "malformed");
    CHECK(contains(message_of(r), "byte order mark"));
  }
  CHECK(decode(raw_signed(hs_key(), header, payload)));
}

TEST_CASE("jws: padding, whitespace and the standard alphabet are refused in every segment") {
  const auto token = hs_token();
  for (int index = 0; index < 3; ++index) {
    CAPTURE(index);
    const auto original = segment(token, index);
    for (const std::string& bad : {original + "=", original + "==", " " + original, original + "\n",
                                   original.substr(0, 4) + "\t" + original.substr(4), original + " "}) {
      CHECK(code_of(decode(with_segment(token, index, bad))) == "malformed");
    }
  }
  auto sig = segment(token, 2);
  for (const char standard : {'+', '/'}) {
    auto bad = sig;
    bad[0] = standard;
    CHECK(code_of(decode(with_segment(token, 2, bad))) == "malformed");
  }
}

TEST_CASE("jws: non-zero trailing bits in the signature segment are refused") {
  const auto token = hs_token();
  auto sig = segment(token, 2); // 32 bytes → 43 chars, the last carries 2 unused bits
  REQUIRE(sig.size() == 43);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const auto last = alphabet.find(sig.back());
  sig.back() = alphabet[last | 1]; // same decoded prefix, a trailing bit set
  const auto r = decode(with_segment(token, 2, sig));
  CHECK(code_of(r) == "malformed");
  CHECK(contains(message_of(r), "trailing bits"));
}

TEST_CASE("jws: exactly three non-empty segments") {
  const auto token = hs_token();
  const auto h = segment(token, 0);
  const auto p = segment(token, 1);
  const auto s = segment(token, 2);
  for (const std::string& bad :
       {h + "." + p, token + "." + s, token + ".", h, std::string(), std::string(".."), std::string("...."),
        "." + p + "." + s, h + ".." + s, h + "." + p + ".", h + "." + p + "." + s + "." + p + "." + s}) {
    CAPTURE(bad);
    CHECK(code_of(decode(bad)) == "malformed");
  }
  CHECK(contains(message_of(decode(h + "." + p)), "2 segments"));
  CHECK(contains(message_of(decode(token + "." + s)), "4 segments"));
  CHECK(contains(message_of(decode(h + "." + p + ".")), "empty signature"));
}

namespace {

// A valid HS256 token of exactly `size` bytes (a claim and the kid pad it).
std::string token_of_size(std::size_t size) {
  for (std::size_t kid = 1; kid <= 3; ++kid) {
    const auto header = R"({"alg":"HS256","kid":")" + std::string(kid, 'k') + "\"}";
    // Base64url grows by 4/3: start a little below the payload that fills `size`.
    for (std::size_t filler = size * 3 / 4 - 256; filler < size; ++filler) {
      auto token = raw_signed(hs_key(), header, R"({"exp":1,"f":")" + std::string(filler, 'a') + "\"}");
      if (token.size() == size) {
        return token;
      }
      if (token.size() > size) {
        break;
      }
    }
  }
  FAIL("no token of size " << size);
  return {};
}

} // namespace

TEST_CASE("jws: a token over 8 KiB is refused before decoding, 8 KiB exactly is fine") {
  const auto exact = token_of_size(jws::k_max_token_bytes);
  CHECK(code_of(decode_and_verify(exact, hs_key())) == "ok");
  const auto too_big = token_of_size(jws::k_max_token_bytes + 1);
  const auto r = decode(too_big);
  CHECK(code_of(r) == "malformed");
  CHECK(contains(message_of(r), "8193 bytes"));
  // Size comes first: even garbage is judged by its length alone.
  CHECK(contains(message_of(decode(std::string(jws::k_max_token_bytes + 1, '.'))), "8193 bytes"));
}

TEST_CASE("jws: HS256 signature one byte short or long fails") {
  const auto token = hs_token();
  const auto sig = *base64url::decode(segment(token, 2));
  for (const std::string& bad : {sig.substr(0, 31), sig + "x", std::string(1, sig[0]), sig + sig}) {
    CAPTURE(bad.size());
    CHECK(code_of(decode_and_verify(with_segment(token, 2, b64(bad)), hs_key())) == "bad_signature");
  }
}

TEST_CASE("jws: RSA signature one byte short or long fails") {
  const auto& key = cached_key(keys::Alg::RS256);
  const auto token = raw_signed(key, R"({"alg":"RS256"})", k_payload);
  REQUIRE(code_of(decode_and_verify(token, key)) == "ok");
  const auto sig = *base64url::decode(segment(token, 2));
  REQUIRE(sig.size() == 256);
  for (const std::string& bad : {sig.substr(0, 255), sig + '\0', std::string(1, '\0') + sig, sig.substr(1)}) {
    CAPTURE(bad.size());
    CHECK(code_of(decode_and_verify(with_segment(token, 2, b64(bad)), key)) == "bad_signature");
  }
}

TEST_CASE("jws: an ES256 signature in DER form instead of raw r||s fails") {
  const auto& key = cached_key(keys::Alg::ES256);
  const std::string header = R"({"alg":"ES256"})";
  const auto input = signing_input(header, k_payload);
  const auto der = der_signature(key, input);
  REQUIRE(der.size() != 64);
  CHECK(code_of(decode_and_verify(input + "." + b64(der), key)) == "bad_signature");
  const auto raw = raw_signed(key, header, k_payload);
  CHECK(code_of(decode_and_verify(raw, key)) == "ok");
  const auto sig = *base64url::decode(segment(raw, 2));
  CHECK(code_of(decode_and_verify(with_segment(raw, 2, b64(sig.substr(0, 63))), key)) == "bad_signature");
  CHECK(code_of(decode_and_verify(with_segment(raw, 2, b64(sig + '\0')), key)) == "bad_signature");
}

TEST_CASE("jws: a tampered payload or header fails the signature") {
  const auto token = hs_token();
  const auto other = b64(R"({"sub":"admin","exp":1795428900})");
  CHECK(code_of(decode_and_verify(with_segment(token, 1, other), hs_key())) == "bad_signature");
  const auto header = b64(R"({"alg":"HS256","typ":"at+jwt","kid":"k2"})");
  CHECK(code_of(decode_and_verify(with_segment(token, 0, header), hs_key())) == "bad_signature");
  CHECK(code_of(decode_and_verify(token, *keys::Key::generate(keys::Alg::HS256))) == "bad_signature");
}

TEST_CASE("jws: the header alg must equal the key's alg exactly") {
  // RS256 → HS256 confusion: an HMAC made with the RSA public key's bytes as the secret.
  const auto& rsa = cached_key(keys::Alg::RS256);
  const auto pem = test::public_pem(rsa);
  REQUIRE(pem);
  const auto secret_key = keys::Key::from_secret(*pem);
  REQUIRE(secret_key);
  const auto forged = raw_signed(*secret_key, R"({"alg":"HS256"})", k_payload);
  const auto r = decode_and_verify(forged, rsa);
  CHECK(code_of(r) == "unsupported");
  CHECK(contains(message_of(r), "HS256"));
  CHECK(contains(message_of(r), "RS256"));
  // Same family, different alg: still refused.
  const auto rs384 = raw_signed(cached_key(keys::Alg::RS384), R"({"alg":"RS384"})", k_payload);
  CHECK(code_of(decode_and_verify(rs384, rsa)) == "unsupported");
  const auto es = raw_signed(cached_key(keys::Alg::ES256), R"({"alg":"ES256"})", k_payload);
  CHECK(code_of(decode_and_verify(es, cached_key(keys::Alg::ES384))) == "unsupported");
}

TEST_CASE("jws: sign then decode round-trips for every algorithm") {
  for (const auto alg : keys::all_algs()) {
    CAPTURE(alg_name(alg));
    const auto& key = cached_key(alg);
    const json::Json header = {{"alg", alg_name(alg)}, {"kid", "k"}};
    const json::Json payload = {{"sub", "alice"}, {"exp", 1795428900}};
    const auto token = jws::sign(header, payload, key);
    REQUIRE_MESSAGE(token, message_of(token));
    const auto decoded = decode(*token);
    REQUIRE_MESSAGE(decoded, message_of(decoded));
    CHECK(decoded->payload == payload);
    CHECK(decoded->signature.size() == key.signature_size());
    CHECK(code_of(jws::verify_signature(*decoded, key)) == "ok");
    const auto public_key = key.public_only();
    REQUIRE(public_key);
    CHECK(code_of(jws::verify_signature(*decoded, *public_key)) == "ok");
  }
}

TEST_CASE("jws: sign refuses a header alg other than the key's and headers decode would refuse") {
  const json::Json payload = {{"exp", 1}};
  CHECK(code_of(jws::sign({{"alg", "RS256"}}, payload, hs_key())) == "unsupported");
  CHECK(code_of(jws::sign({{"alg", "none"}}, payload, hs_key())) == "unsupported");
  CHECK(code_of(jws::sign({{"typ", "JWT"}}, payload, hs_key())) == "malformed");
  CHECK(code_of(jws::sign({{"alg", "HS256"}, {"crit", {"exp"}}}, payload, hs_key())) == "unsupported");
  CHECK(code_of(jws::sign({{"alg", "HS256"}, {"jwk", {{"kty", "oct"}}}}, payload, hs_key()))
        == "unsupported");
  CHECK(code_of(jws::sign(json::Json::array({"HS256"}), payload, hs_key())) == "malformed");
  CHECK(code_of(jws::sign({{"alg", "HS256"}}, json::Json("text"), hs_key())) == "malformed");
  CHECK(code_of(jws::sign({{"alg", "HS256"}}, {{"bad", "\xff"}}, hs_key())) == "malformed");
}

TEST_CASE("jws: sign with a public-only key fails") {
  const auto public_key = cached_key(keys::Alg::ES256).public_only();
  REQUIRE(public_key);
  CHECK(code_of(jws::sign({{"alg", "ES256"}}, {{"exp", 1}}, *public_key)) == "unsupported");
}

TEST_CASE("jws: sign_serialized signs the exact bytes given") {
  const std::string header = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
  const std::string payload = "{\"exp\":1,\r\n \"z\":0}";
  const auto token = jws::sign_serialized(header, payload, hs_key());
  REQUIRE_MESSAGE(token, message_of(token));
  CHECK(token->starts_with(signing_input(header, payload) + "."));
  CHECK(code_of(decode_and_verify(*token, hs_key())) == "ok");
  CHECK(code_of(jws::sign_serialized(R"({"alg":"HS256","zip":"DEF"})", payload, hs_key())) == "unsupported");
  CHECK(code_of(jws::sign_serialized(R"({"alg":"HS256","alg":"HS256"})", payload, hs_key())) == "malformed");
}
