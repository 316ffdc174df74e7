// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/keys.hpp"

#include "claudegate/base/clock.hpp"
#include "claudegate/jose/base64url.hpp"
#include "key_contexts.hpp"
#include "openssl_util.hpp"

#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <array>
#include <deque>
#include <utility>

namespace claudegate::keys {

namespace {

constexpr std::size_t k_min_secret_bytes = 32;
constexpr std::size_t k_generated_secret_bytes = 32;
constexpr int k_min_rsa_bits = 2048;
// Refuse absurd moduli from untrusted JWKS: verifying with them is a denial of service.
constexpr int k_max_rsa_bits = 16384;

constexpr std::array<std::pair<Alg, std::string_view>, 8> k_alg_names = {{
    {Alg::RS256, "RS256"},
    {Alg::RS384, "RS384"},
    {Alg::RS512, "RS512"},
    {Alg::PS256, "PS256"},
    {Alg::ES256, "ES256"},
    {Alg::ES384, "ES384"},
    {Alg::EdDSA, "EdDSA"},
    {Alg::HS256, "HS256"},
}};

enum class Curve { none, p256, p384, ed25519 };

struct CurveInfo {
  Curve curve;
  std::string_view jwk_name;
  const char* openssl_group; // EC group name; empty for OKP
  std::size_t field_bytes;
};

constexpr std::array<CurveInfo, 3> k_curves = {{
    {Curve::p256, "P-256", "prime256v1", 32},
    {Curve::p384, "P-384", "secp384r1", 48},
    {Curve::ed25519, "Ed25519", "", 32},
}};

const CurveInfo& curve_info(Curve curve) {
  for (const auto& info : k_curves) {
    if (info.curve == curve) {
      return info;
    }
  }
  return k_curves.front(); // unreachable: every Curve but none is listed
}

// What we learn about an EVP_PKEY once, to bind it to an algorithm.
struct KeyFacts {
  KeyType type = KeyType::rsa;
  Curve curve = Curve::none;
  int bits = 0;
  bool has_private = false;
};

KeyType alg_key_type(Alg alg) {
  switch (alg) {
  case Alg::ES256:
  case Alg::ES384:
    return KeyType::ec;
  case Alg::EdDSA:
    return KeyType::okp;
  case Alg::HS256:
    return KeyType::oct;
  default:
    return KeyType::rsa;
  }
}

Curve alg_curve(Alg alg) {
  switch (alg) {
  case Alg::ES256:
    return Curve::p256;
  case Alg::ES384:
    return Curve::p384;
  case Alg::EdDSA:
    return Curve::ed25519;
  default:
    return Curve::none;
  }
}

Alg derived_alg(const KeyFacts& facts) {
  switch (facts.type) {
  case KeyType::ec:
    return facts.curve == Curve::p384 ? Alg::ES384 : Alg::ES256;
  case KeyType::okp:
    return Alg::EdDSA;
  case KeyType::oct:
    return Alg::HS256;
  case KeyType::rsa:
    break;
  }
  return Alg::RS256;
}

std::string describe(const KeyFacts& facts) {
  if (facts.type == KeyType::rsa) {
    return "an RSA key";
  }
  if (facts.type == KeyType::oct) {
    return "a shared secret";
  }
  return "an " + std::string(key_type_name(facts.type)) + " " + std::string(curve_info(facts.curve).jwk_name)
         + " key";
}

// The algorithm/key binding of DESIGN.md §4: each key serves exactly one fitting alg.
Result<void> check_fits(Alg alg, const KeyFacts& facts) {
  const std::string name(alg_name(alg));
  if (alg_key_type(alg) != facts.type || (facts.type != KeyType::rsa && alg_curve(alg) != facts.curve)) {
    return fail(Errc::unsupported, "algorithm " + name + " cannot use " + describe(facts));
  }
  if (facts.type == KeyType::rsa && facts.bits < k_min_rsa_bits) {
    return fail(Errc::unsupported, "RSA key of " + std::to_string(facts.bits) + " bits is too small for "
                                       + name + " (minimum " + std::to_string(k_min_rsa_bits) + ")");
  }
  if (facts.type == KeyType::rsa && facts.bits > k_max_rsa_bits) {
    return fail(Errc::unsupported, "RSA key of " + std::to_string(facts.bits) + " bits is too large (maximum "
                                       + std::to_string(k_max_rsa_bits) + ")");
  }
  return {};
}

bool has_bn_param(EVP_PKEY* pkey, const char* name) {
  BIGNUM* raw = nullptr;
  const bool found = EVP_PKEY_get_bn_param(pkey, name, &raw) == 1;
  BN_clear_free(raw);
  ossl::clear_errors();
  return found;
}

bool has_octet_param(EVP_PKEY* pkey, const char* name) {
  std::array<unsigned char, 64> buffer{};
  std::size_t length = 0;
  const bool found = EVP_PKEY_get_octet_string_param(pkey, name, buffer.data(), buffer.size(), &length) == 1;
  OPENSSL_cleanse(buffer.data(), buffer.size());
  ossl::clear_errors();
  return found && length > 0;
}

Result<KeyFacts> inspect_ec(EVP_PKEY* pkey) {
  std::array<char, 64> group{};
  std::size_t length = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(), &length)
      != 1) {
    ossl::clear_errors();
    return fail(Errc::unsupported, "EC key without a named curve is not supported (use P-256 or P-384)");
  }
  const std::string_view name(group.data(), length);
  for (const auto& info : k_curves) {
    if (info.curve != Curve::ed25519 && name == info.openssl_group) {
      return KeyFacts{KeyType::ec, info.curve, EVP_PKEY_get_bits(pkey),
                      has_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY)};
    }
  }
  return fail(Errc::unsupported, "EC curve " + std::string(name) + " is not supported (use P-256 or P-384)");
}

Result<KeyFacts> inspect(EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "RSA") == 1) {
    return KeyFacts{KeyType::rsa, Curve::none, EVP_PKEY_get_bits(pkey),
                    has_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D)};
  }
  if (EVP_PKEY_is_a(pkey, "EC") == 1) {
    return inspect_ec(pkey);
  }
  if (EVP_PKEY_is_a(pkey, "ED25519") == 1) {
    // Ed25519 keys are 256-bit encodings.
    return KeyFacts{KeyType::okp, Curve::ed25519, 256, has_octet_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY)};
  }
  const char* type = EVP_PKEY_get0_type_name(pkey);
  return fail(Errc::unsupported, "key type " + std::string(type != nullptr ? type : "unknown")
                                     + " is not supported (use RSA, EC P-256/P-384 or Ed25519)");
}

// Big-endian bytes of BIGNUM parameter `name`, left-padded to `width` (0: minimal).
Result<std::string> bn_param(EVP_PKEY* pkey, const char* name, std::size_t width = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1) {
    return ossl::fail_openssl(std::string("reading key parameter ") + name);
  }
  const ossl::BignumPtr bn(raw);
  const auto size = std::max(width, static_cast<std::size_t>(BN_num_bytes(bn.get())));
  std::string out(size, '\0');
  if (BN_bn2binpad(bn.get(), ossl::bytes(out), static_cast<int>(size)) < 0) {
    return ossl::fail_openssl(std::string("encoding key parameter ") + name);
  }
  return out;
}

Result<std::string> octet_param(EVP_PKEY* pkey, const char* name, std::size_t size) {
  std::string out(size, '\0');
  std::size_t length = 0;
  if (EVP_PKEY_get_octet_string_param(pkey, name, ossl::bytes(out), out.size(), &length) != 1
      || length != size) {
    return ossl::fail_openssl(std::string("reading key parameter ") + name);
  }
  return out;
}

// Sets JWK member `member` to the base64url of a key parameter, if it could be read.
Result<void> put(json::Json& jwk, const char* member, Result<std::string> value) {
  if (!value) {
    return std::unexpected(value.error());
  }
  jwk[member] = base64url::encode(*value);
  ossl::cleanse(*value);
  return {};
}

// The RFC 7638 required members: exactly what the thumbprint hashes.
Result<json::Json> public_members(EVP_PKEY* pkey, const KeyFacts& facts) {
  json::Json jwk = {{"kty", key_type_name(facts.type)}};
  if (facts.type == KeyType::rsa) {
    auto n = put(jwk, "n", bn_param(pkey, OSSL_PKEY_PARAM_RSA_N));
    auto e = n ? put(jwk, "e", bn_param(pkey, OSSL_PKEY_PARAM_RSA_E)) : n;
    return e ? Result<json::Json>(std::move(jwk)) : std::unexpected(e.error());
  }
  const auto& curve = curve_info(facts.curve);
  jwk["crv"] = curve.jwk_name;
  if (facts.type == KeyType::okp) {
    auto x = put(jwk, "x", octet_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, curve.field_bytes));
    return x ? Result<json::Json>(std::move(jwk)) : std::unexpected(x.error());
  }
  auto x = put(jwk, "x", bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, curve.field_bytes));
  auto y = x ? put(jwk, "y", bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, curve.field_bytes)) : x;
  return y ? Result<json::Json>(std::move(jwk)) : std::unexpected(y.error());
}

constexpr std::array<std::pair<const char*, const char*>, 5> k_rsa_crt_members = {{
    {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
    {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},
    {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
    {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2},
    {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
}};

Result<void> add_rsa_private_members(json::Json& jwk, EVP_PKEY* pkey) {
  if (auto d = put(jwk, "d", bn_param(pkey, OSSL_PKEY_PARAM_RSA_D)); !d) {
    return d;
  }
  // Keys imported without CRT parameters (n, e, d only) stay that way.
  if (!has_bn_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR1)) {
    return {};
  }
  for (const auto& [member, param] : k_rsa_crt_members) {
    if (auto added = put(jwk, member, bn_param(pkey, param)); !added) {
      return added;
    }
  }
  return {};
}

Result<void> add_private_members(json::Json& jwk, EVP_PKEY* pkey, const KeyFacts& facts) {
  const auto& curve = curve_info(facts.curve);
  switch (facts.type) {
  case KeyType::rsa:
    return add_rsa_private_members(jwk, pkey);
  case KeyType::ec:
    return put(jwk, "d", bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, curve.field_bytes));
  case KeyType::okp:
    return put(jwk, "d", octet_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, curve.field_bytes));
  case KeyType::oct:
    break;
  }
  return {};
}

// RFC 7638: SHA-256 of the required members, sorted, without whitespace
// (nlohmann objects are sorted maps and dump() adds no whitespace).
Result<std::string> thumbprint(const json::Json& required_members) {
  auto digest = ossl::sha256(required_members.dump());
  if (!digest) {
    return digest;
  }
  return base64url::encode(*digest);
}

// OpenSSL's key generation callback: hands each step to the caller's Progress.
int report_progress(EVP_PKEY_CTX* ctx) {
  const auto* progress = static_cast<const Key::Progress*>(EVP_PKEY_CTX_get_app_data(ctx));
  (*progress)();
  return 1; // keep going
}

EVP_PKEY* generate_rsa(int rsa_bits, const Key::Progress& progress) {
  const ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0
      || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), rsa_bits) <= 0) {
    return nullptr;
  }
  if (progress) {
    EVP_PKEY_CTX_set_app_data(ctx.get(), const_cast<Key::Progress*>(&progress));
    EVP_PKEY_CTX_set_cb(ctx.get(), report_progress);
  }
  EVP_PKEY* raw = nullptr;
  return EVP_PKEY_generate(ctx.get(), &raw) > 0 ? raw : nullptr;
}

Result<ossl::PkeyPtr> generate_pkey(Alg alg, int rsa_bits, const Key::Progress& progress) {
  EVP_PKEY* raw = nullptr;
  switch (alg_key_type(alg)) {
  case KeyType::rsa:
    if (rsa_bits != 2048 && rsa_bits != 3072 && rsa_bits != 4096) {
      return fail(Errc::config,
                  "RSA key size " + std::to_string(rsa_bits) + " is not supported (use 2048, 3072 or 4096)");
    }
    raw = generate_rsa(rsa_bits, progress);
    break;
  case KeyType::ec:
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve_info(alg_curve(alg)).openssl_group);
    break;
  case KeyType::okp:
    raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    break;
  case KeyType::oct:
    return fail(Errc::internal, "HS256 keys are secrets, not key pairs");
  }
  if (raw == nullptr) {
    return ossl::fail_crypto("generating a key for " + std::string(alg_name(alg)));
  }
  return ossl::PkeyPtr(raw);
}

// Never prompt on the terminal for an encrypted key: refuse instead.
int refuse_passphrase(char*, std::size_t, std::size_t*, const OSSL_PARAM*, void*) {
  return 0;
}

struct PemKeyBlock {
  std::string_view text; // from the BEGIN line to the end of the input
  int selection;         // what the block holds: EVP_PKEY_KEYPAIR or EVP_PKEY_PUBLIC_KEY
};

// The first PEM block holding a key, skipping others such as the
// "EC PARAMETERS" block that `openssl ecparam -genkey` writes first.
std::optional<PemKeyBlock> find_key_block(std::string_view pem) {
  constexpr std::string_view k_begin = "-----BEGIN ";
  for (auto pos = pem.find(k_begin); pos != std::string_view::npos; pos = pem.find(k_begin, pos + 1)) {
    const auto label_start = pos + k_begin.size();
    const auto label_end = pem.find("-----", label_start);
    const auto label = pem.substr(label_start, label_end - label_start);
    if (label.ends_with("PRIVATE KEY")) {
      return PemKeyBlock{pem.substr(pos), EVP_PKEY_KEYPAIR};
    }
    if (label.ends_with("PUBLIC KEY")) {
      return PemKeyBlock{pem.substr(pos), EVP_PKEY_PUBLIC_KEY};
    }
  }
  return std::nullopt;
}

// OpenSSL's name for the key type `alg` needs; nullptr when any may do.
const char* decoder_key_type(std::optional<Alg> alg) {
  if (!alg) {
    return nullptr;
  }
  switch (alg_key_type(*alg)) {
  case KeyType::rsa:
    return "RSA";
  case KeyType::ec:
    return "EC";
  case KeyType::okp:
    return "ED25519";
  case KeyType::oct:
    break;
  }
  return nullptr;
}

// `block` decoded by OpenSSL's decoders for `key_type` (nullptr: every key
// type); nullptr when they cannot, with the reason on OpenSSL's error queue.
EVP_PKEY* decode_pem_block(const PemKeyBlock& block, const char* key_type) {
  EVP_PKEY* raw = nullptr;
  const ossl::DecoderCtxPtr ctx(
      OSSL_DECODER_CTX_new_for_pkey(&raw, "PEM", nullptr, key_type, block.selection, nullptr, nullptr));
  if (!ctx || OSSL_DECODER_CTX_set_passphrase_cb(ctx.get(), refuse_passphrase, nullptr) != 1) {
    return nullptr;
  }
  const unsigned char* data = ossl::bytes(block.text);
  std::size_t length = block.text.size();
  if (OSSL_DECODER_from_data(ctx.get(), &data, &length) != 1) {
    EVP_PKEY_free(raw);
    return nullptr;
  }
  return raw; // null when the decoders found no key
}

// Naming the key type `alg` expects spares the decoders trying every type (a
// third of a cold `claudegate verify`'s CPU); a key of another type (an
// RSA-PSS key for PS256, a mismatch) is decoded again untyped, so it gets
// the same diagnostics as before.
Result<ossl::PkeyPtr> decode_pem(std::string_view pem, std::optional<Alg> alg) {
  const auto block = find_key_block(pem);
  if (!block) {
    return fail(Errc::malformed, "no PEM key found (expected PKCS#8, PKCS#1 RSA, SEC1 EC or a PUBLIC KEY)");
  }
  if (block->text.starts_with("-----BEGIN ENCRYPTED")
      || block->text.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos) {
    return fail(Errc::unsupported,
                "encrypted PEM keys are not supported; decrypt it first (openssl pkey -in KEY -out PLAIN)");
  }
  if (const char* key_type = decoder_key_type(alg)) {
    if (EVP_PKEY* typed = decode_pem_block(*block, key_type)) {
      return ossl::PkeyPtr(typed);
    }
    ossl::clear_errors();
  }
  EVP_PKEY* raw = decode_pem_block(*block, nullptr);
  if (raw == nullptr) {
    return ossl::fail_openssl("PEM key could not be decoded", Errc::malformed);
  }
  return ossl::PkeyPtr(raw);
}

// Collects OSSL_PARAMs for EVP_PKEY_fromdata; owns the values until build().
class ParamBuilder {
public:
  ParamBuilder() : m_bld(OSSL_PARAM_BLD_new()) {}
  ParamBuilder(const ParamBuilder&) = delete;
  ParamBuilder& operator=(const ParamBuilder&) = delete;
  ~ParamBuilder() {
    for (auto& value : m_values) {
      ossl::cleanse(value);
    }
  }

  void push_bn(const char* name, std::string_view big_endian) {
    m_bns.emplace_back(BN_bin2bn(ossl::bytes(big_endian), static_cast<int>(big_endian.size()), nullptr));
    m_ok =
        m_ok && m_bld && m_bns.back() && OSSL_PARAM_BLD_push_BN(m_bld.get(), name, m_bns.back().get()) == 1;
  }

  void push_octets(const char* name, std::string value) {
    const auto& kept = m_values.emplace_back(std::move(value));
    m_ok =
        m_ok && m_bld && OSSL_PARAM_BLD_push_octet_string(m_bld.get(), name, kept.data(), kept.size()) == 1;
  }

  void push_utf8(const char* name, const char* value) {
    m_ok = m_ok && m_bld && OSSL_PARAM_BLD_push_utf8_string(m_bld.get(), name, value, 0) == 1;
  }

  // An EVP_PKEY of OpenSSL type `type` holding `selection` from the pushed values.
  Result<ossl::PkeyPtr> build(const char* type, int selection) {
    const ossl::ParamsPtr params(m_ok ? OSSL_PARAM_BLD_to_param(m_bld.get()) : nullptr);
    const ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1
        || EVP_PKEY_fromdata(ctx.get(), &raw, selection, params.get()) != 1) {
      return ossl::fail_openssl(std::string("JWK is not a valid ") + type + " key", Errc::malformed);
    }
    return ossl::PkeyPtr(raw);
  }

private:
  ossl::ParamBldPtr m_bld;
  std::deque<ossl::BignumPtr> m_bns;
  std::deque<std::string> m_values; // deque: elements never move while builder refers to them
  bool m_ok = true;
};

bool has_member(const json::Json& jwk, const char* name) {
  return jwk.contains(name);
}

// JWK member `name`, which must be a string when present.
Result<std::optional<std::string>> string_member(const json::Json& jwk, const char* name) {
  const auto it = jwk.find(name);
  if (it == jwk.end()) {
    return std::nullopt;
  }
  if (!it->is_string()) {
    return fail(Errc::malformed, std::string("JWK member \"") + name + "\" must be a string");
  }
  return it->get<std::string>();
}

// The decoded bytes of base64url JWK member `name`; nullopt when absent.
Result<std::optional<std::string>> optional_bytes(const json::Json& jwk, const char* name) {
  auto text = string_member(jwk, name);
  if (!text || !*text) {
    return text;
  }
  auto decoded = base64url::decode(**text);
  if (!decoded) {
    return fail(Errc::malformed, std::string("JWK member \"") + name + "\": " + decoded.error().message);
  }
  if (decoded->empty()) {
    return fail(Errc::malformed, std::string("JWK member \"") + name + "\" is empty");
  }
  return std::optional<std::string>(std::move(*decoded));
}

Result<std::string> required_bytes(const json::Json& jwk, const char* name, std::size_t exact_size = 0) {
  auto value = optional_bytes(jwk, name);
  if (!value) {
    return std::unexpected(value.error());
  }
  if (!*value) {
    return fail(Errc::malformed, std::string("JWK is missing member \"") + name + "\"");
  }
  if (exact_size != 0 && (*value)->size() != exact_size) {
    return fail(Errc::malformed, std::string("JWK member \"") + name + "\" must be "
                                     + std::to_string(exact_size) + " bytes, got "
                                     + std::to_string((*value)->size()));
  }
  return std::move(**value);
}

// Pushes the CRT members p, q, dp, dq, qi: all or none of them.
Result<void> push_rsa_crt(const json::Json& jwk, ParamBuilder& params) {
  std::size_t present = 0;
  for (const auto& entry : k_rsa_crt_members) {
    if (has_member(jwk, entry.first)) {
      ++present;
    }
  }
  if (present != 0 && present != k_rsa_crt_members.size()) {
    return fail(Errc::malformed, "RSA JWK needs all of p, q, dp, dq, qi or none of them");
  }
  if (present == 0) {
    return {};
  }
  for (const auto& [member, param] : k_rsa_crt_members) {
    auto value = required_bytes(jwk, member);
    if (!value) {
      return std::unexpected(value.error());
    }
    params.push_bn(param, *value);
    ossl::cleanse(*value);
  }
  return {};
}

Result<ossl::PkeyPtr> rsa_from_jwk(const json::Json& jwk) {
  if (has_member(jwk, "oth")) {
    return fail(Errc::unsupported, "multi-prime RSA keys (\"oth\") are not supported");
  }
  ParamBuilder params;
  auto n = required_bytes(jwk, "n");
  auto e = n ? required_bytes(jwk, "e") : n;
  auto d = e ? optional_bytes(jwk, "d") : std::unexpected(e.error());
  if (!d) {
    return std::unexpected(d.error());
  }
  params.push_bn(OSSL_PKEY_PARAM_RSA_N, *n);
  params.push_bn(OSSL_PKEY_PARAM_RSA_E, *e);
  if (!*d && has_member(jwk, "p")) {
    return fail(Errc::malformed, "RSA JWK has CRT members but no \"d\"");
  }
  if (*d) {
    params.push_bn(OSSL_PKEY_PARAM_RSA_D, **d);
    ossl::cleanse(**d);
    if (auto crt = push_rsa_crt(jwk, params); !crt) {
      return std::unexpected(crt.error());
    }
  }
  return params.build("RSA", *d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY);
}

// A private key whose public half does not match is refused, not silently used.
Result<ossl::PkeyPtr> checked_pair(Result<ossl::PkeyPtr> pkey) {
  if (!pkey) {
    return pkey;
  }
  const ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey->get(), nullptr));
  if (!ctx || EVP_PKEY_pairwise_check(ctx.get()) != 1) {
    return ossl::fail_openssl("JWK private key \"d\" does not match its public key", Errc::malformed);
  }
  return pkey;
}

Result<ossl::PkeyPtr> checked_public(Result<ossl::PkeyPtr> pkey) {
  if (!pkey) {
    return pkey;
  }
  const ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey->get(), nullptr));
  if (!ctx || EVP_PKEY_public_check(ctx.get()) != 1) {
    return ossl::fail_openssl("JWK public key is not a valid curve point", Errc::malformed);
  }
  return pkey;
}

Result<const CurveInfo*> jwk_curve(const json::Json& jwk, KeyType type) {
  auto crv = string_member(jwk, "crv");
  if (!crv) {
    return std::unexpected(crv.error());
  }
  if (!*crv) {
    return fail(Errc::malformed, "JWK is missing member \"crv\"");
  }
  for (const auto& info : k_curves) {
    if (info.jwk_name == **crv && (type == KeyType::okp) == (info.curve == Curve::ed25519)) {
      return &info;
    }
  }
  return fail(Errc::unsupported, std::string(key_type_name(type)) + " curve \"" + **crv
                                     + "\" is not supported"
                                     + (type == KeyType::okp ? " (use Ed25519)" : " (use P-256 or P-384)"));
}

Result<ossl::PkeyPtr> ec_from_jwk(const json::Json& jwk) {
  auto curve = jwk_curve(jwk, KeyType::ec);
  auto x = curve ? required_bytes(jwk, "x", (*curve)->field_bytes) : std::unexpected(curve.error());
  auto y = x ? required_bytes(jwk, "y", (*curve)->field_bytes) : x;
  auto d = y ? optional_bytes(jwk, "d") : std::unexpected(y.error());
  if (!d) {
    return std::unexpected(d.error());
  }
  ParamBuilder params;
  params.push_utf8(OSSL_PKEY_PARAM_GROUP_NAME, (*curve)->openssl_group);
  params.push_octets(OSSL_PKEY_PARAM_PUB_KEY, "\x04" + *x + *y); // SEC1 uncompressed point
  if (!*d) {
    return checked_public(params.build("EC", EVP_PKEY_PUBLIC_KEY));
  }
  if ((*d)->size() != (*curve)->field_bytes) {
    return fail(Errc::malformed,
                "JWK member \"d\" must be " + std::to_string((*curve)->field_bytes) + " bytes");
  }
  params.push_bn(OSSL_PKEY_PARAM_PRIV_KEY, **d);
  ossl::cleanse(**d);
  return checked_pair(params.build("EC", EVP_PKEY_KEYPAIR));
}

Result<ossl::PkeyPtr> okp_from_jwk(const json::Json& jwk) {
  auto curve = jwk_curve(jwk, KeyType::okp);
  auto x = curve ? required_bytes(jwk, "x", (*curve)->field_bytes) : std::unexpected(curve.error());
  auto d = x ? optional_bytes(jwk, "d") : std::unexpected(x.error());
  if (!d) {
    return std::unexpected(d.error());
  }
  ParamBuilder params;
  params.push_octets(OSSL_PKEY_PARAM_PUB_KEY, std::move(*x));
  if (!*d) {
    return params.build("ED25519", EVP_PKEY_PUBLIC_KEY);
  }
  if ((*d)->size() != (*curve)->field_bytes) {
    return fail(Errc::malformed,
                "JWK member \"d\" must be " + std::to_string((*curve)->field_bytes) + " bytes");
  }
  params.push_octets(OSSL_PKEY_PARAM_PRIV_KEY, std::move(**d));
  return checked_pair(params.build("ED25519", EVP_PKEY_KEYPAIR));
}

Result<ossl::PkeyPtr> pkey_from_jwk(std::string_view kty, const json::Json& jwk) {
  if (kty == "RSA") {
    return rsa_from_jwk(jwk);
  }
  if (kty == "EC") {
    return ec_from_jwk(jwk);
  }
  if (kty == "OKP") {
    return okp_from_jwk(jwk);
  }
  return fail(Errc::unsupported, "JWK key type \"" + std::string(kty) + "\" is not supported");
}

// The algorithm binding a JWK: the caller's, else the JWK's "alg", which may not contradict it.
Result<std::optional<Alg>> jwk_alg(const json::Json& jwk, std::optional<Alg> requested) {
  auto name = string_member(jwk, "alg");
  if (!name || !*name) {
    return name ? Result<std::optional<Alg>>(requested) : std::unexpected(name.error());
  }
  const auto named = alg_from_name(**name);
  if (!named) {
    return fail(Errc::unsupported, "JWK algorithm \"" + **name + "\" is not supported");
  }
  if (requested && *requested != *named) {
    return fail(Errc::unsupported,
                "JWK is bound to " + **name + ", not " + std::string(alg_name(*requested)));
  }
  return named;
}

} // namespace

Result<Key> KeyAccess::from_pkey(ossl::PkeyPtr pkey, std::optional<Alg> requested) {
  auto facts = inspect(pkey.get());
  if (!facts) {
    return std::unexpected(facts.error());
  }
  const Alg alg = requested.value_or(derived_alg(*facts));
  auto fits = check_fits(alg, *facts);
  auto members = fits ? public_members(pkey.get(), *facts) : std::unexpected(fits.error());
  auto kid = members ? thumbprint(*members) : std::unexpected(members.error());
  if (!kid) {
    return std::unexpected(kid.error());
  }
  Key key;
  key.m_alg = alg;
  key.m_type = facts->type;
  key.m_has_private = facts->has_private;
  key.m_bits = facts->bits;
  key.m_kid = std::move(*kid);
  key.m_pkey = std::shared_ptr<EVP_PKEY>(pkey.release(), &EVP_PKEY_free);
  key.m_prepared = prepare(key);
  return key;
}

Result<Key> KeyAccess::from_secret(std::string secret, Alg alg) {
  const KeyFacts facts{KeyType::oct, Curve::none, static_cast<int>(secret.size() * 8), true};
  if (auto fits = check_fits(alg, facts); !fits) {
    return std::unexpected(fits.error());
  }
  if (secret.size() < k_min_secret_bytes) {
    return fail(Errc::unsupported, "HS256 secret of " + std::to_string(secret.size())
                                       + " bytes is too short (minimum " + std::to_string(k_min_secret_bytes)
                                       + ")");
  }
  json::Json members = {{"k", base64url::encode(secret)}, {"kty", "oct"}};
  auto kid = thumbprint(members);
  ossl::cleanse(members["k"].get_ref<std::string&>());
  if (!kid) {
    return std::unexpected(kid.error());
  }
  Key key;
  key.m_alg = alg;
  key.m_type = KeyType::oct;
  key.m_has_private = true;
  key.m_bits = facts.bits;
  key.m_kid = std::move(*kid);
  key.m_secret = std::move(secret);
  key.m_prepared = prepare(key);
  return key;
}

std::string_view alg_name(Alg alg) {
  for (const auto& [value, name] : k_alg_names) {
    if (value == alg) {
      return name;
    }
  }
  return "unknown";
}

std::optional<Alg> alg_from_name(std::string_view name) {
  for (const auto& [value, registered] : k_alg_names) {
    if (registered == name) {
      return value;
    }
  }
  return std::nullopt;
}

const std::vector<Alg>& all_algs() {
  static const std::vector<Alg> algs = [] {
    std::vector<Alg> out;
    for (const auto& entry : k_alg_names) {
      out.push_back(entry.first);
    }
    return out;
  }();
  return algs;
}

std::string_view key_type_name(KeyType type) {
  switch (type) {
  case KeyType::rsa:
    return "RSA";
  case KeyType::ec:
    return "EC";
  case KeyType::okp:
    return "OKP";
  case KeyType::oct:
    return "oct";
  }
  return "unknown";
}

Result<Key> Key::generate(Alg alg, int rsa_bits, const Progress& progress) {
  if (alg == Alg::HS256) {
    SystemRandom random;
    return KeyAccess::from_secret(random.bytes(k_generated_secret_bytes), alg);
  }
  auto pkey = generate_pkey(alg, rsa_bits, progress);
  if (!pkey) {
    return std::unexpected(pkey.error());
  }
  return KeyAccess::from_pkey(std::move(*pkey), alg);
}

Result<Key> Key::from_pem(std::string_view pem, std::optional<Alg> alg) {
  auto pkey = decode_pem(pem, alg);
  if (!pkey) {
    return std::unexpected(pkey.error());
  }
  return KeyAccess::from_pkey(std::move(*pkey), alg);
}

Result<Key> Key::from_jwk(const json::Json& jwk, std::optional<Alg> alg) {
  if (!jwk.is_object()) {
    return fail(Errc::malformed, "JWK must be a JSON object");
  }
  auto kty = string_member(jwk, "kty");
  auto bound = kty ? jwk_alg(jwk, alg) : std::unexpected(kty.error());
  if (!bound) {
    return std::unexpected(bound.error());
  }
  if (!*kty) {
    return fail(Errc::malformed, "JWK is missing member \"kty\"");
  }
  if (**kty == "oct") {
    auto secret = required_bytes(jwk, "k");
    return secret ? KeyAccess::from_secret(std::move(*secret), bound->value_or(Alg::HS256))
                  : std::unexpected(secret.error());
  }
  auto pkey = pkey_from_jwk(**kty, jwk);
  if (!pkey) {
    return std::unexpected(pkey.error());
  }
  return KeyAccess::from_pkey(std::move(*pkey), *bound);
}

Result<Key> Key::from_secret(std::string secret, Alg alg) {
  return KeyAccess::from_secret(std::move(secret), alg);
}

std::size_t Key::signature_size() const {
  switch (m_alg) {
  case Alg::ES256:
    return 64;
  case Alg::ES384:
    return 96;
  case Alg::EdDSA:
    return 64;
  case Alg::HS256:
    return 32;
  default:
    return static_cast<std::size_t>((m_bits + 7) / 8);
  }
}

Result<json::Json> Key::to_jwk(IncludePrivate include) const {
  json::Json jwk;
  if (is_symmetric()) {
    if (include == IncludePrivate::no) {
      return fail(Errc::unsupported, "symmetric (HS256) keys are never published");
    }
    jwk = {{"kty", "oct"}, {"k", base64url::encode(m_secret)}};
  } else {
    auto facts = inspect(m_pkey.get());
    auto members = facts ? public_members(m_pkey.get(), *facts) : std::unexpected(facts.error());
    if (!members) {
      return members;
    }
    jwk = std::move(*members);
    if (include == IncludePrivate::yes && m_has_private) {
      if (auto added = add_private_members(jwk, m_pkey.get(), *facts); !added) {
        return std::unexpected(added.error());
      }
    }
  }
  jwk["kid"] = m_kid;
  jwk["alg"] = alg_name(m_alg);
  jwk["use"] = "sig";
  return jwk;
}

Result<std::string> Key::private_pem() const {
  if (is_symmetric() || !m_has_private) {
    return fail(Errc::unsupported,
                is_symmetric() ? "HS256 secrets have no PEM form" : "public key has no private part");
  }
  const ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  // PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in OpenSSL 3.
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), m_pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return ossl::fail_crypto("writing private key PEM");
  }
  return ossl::bio_contents(bio.get());
}

Result<std::string> Key::public_pem() const {
  if (is_symmetric()) {
    return fail(Errc::unsupported, "HS256 secrets have no public key");
  }
  const ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), m_pkey.get()) != 1) {
    return ossl::fail_openssl("writing public key PEM");
  }
  return ossl::bio_contents(bio.get());
}

Result<Key> Key::public_only() const {
  if (is_symmetric() || !m_has_private) {
    return *this;
  }
  // A SubjectPublicKeyInfo round trip keeps exactly the public half.
  unsigned char* der = nullptr;
  const int length = i2d_PUBKEY(m_pkey.get(), &der);
  if (length <= 0) {
    return ossl::fail_openssl("extracting the public key");
  }
  const unsigned char* cursor = der;
  ossl::PkeyPtr pub(d2i_PUBKEY(nullptr, &cursor, length));
  OPENSSL_free(der);
  if (!pub) {
    return ossl::fail_openssl("reading back the public key");
  }
  return KeyAccess::from_pkey(std::move(pub), m_alg);
}

} // namespace claudegate::keys
