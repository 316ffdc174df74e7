// SPDX-License-Identifier: Apache-2.0
// The algorithm catalog and Key: binding a key to the one algorithm it
// serves. JWK, PEM and key generation live in jwk.cpp, pem.cpp, keygen.cpp.
#include "claudegate/jose/keys.hpp"

#include "claudegate/jose/base64url.hpp"
#include "key_contexts.hpp"
#include "key_facts.hpp"
#include "openssl_util.hpp"

#include <openssl/x509.h>

#include <array>
#include <utility>

namespace claudegate::keys {

namespace {

constexpr std::size_t k_min_secret_bytes = 32;
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
} // namespace

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

bool has_bn_param(EVP_PKEY* pkey, const char* name) {
  BIGNUM* raw = nullptr;
  const bool found = EVP_PKEY_get_bn_param(pkey, name, &raw) == 1;
  BN_clear_free(raw);
  ossl::clear_errors();
  return found;
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

Result<Key> KeyAccess::from_pkey(ossl::PkeyPtr pkey, std::optional<Alg> requested) {
  auto facts = inspect(pkey.get());
  if (!facts) {
    return propagate(facts);
  }
  const Alg alg = requested.value_or(derived_alg(*facts));
  auto fits = check_fits(alg, *facts);
  auto members = fits ? public_members(pkey.get(), *facts) : propagate(fits);
  auto kid = members ? thumbprint(*members) : propagate(members);
  if (!kid) {
    return propagate(kid);
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
    return propagate(fits);
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
    return propagate(kid);
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
