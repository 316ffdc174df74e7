// SPDX-License-Identifier: Apache-2.0
// Internal to jose, part of the keys module: the curve catalog and the facts
// read off an EVP_PKEY, shared by keys.cpp (algorithm catalog and Key),
// jwk.cpp (JWK import/export, RFC 7638 thumbprint), pem.cpp and keygen.cpp.
#pragma once

#include "claudegate/jose/keys.hpp"
#include "openssl_util.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace claudegate::keys {

enum class Curve { none, p256, p384, ed25519 };

struct CurveInfo {
  Curve curve;
  std::string_view jwk_name;
  const char* openssl_group; // EC group name; empty for OKP
  std::size_t field_bytes;
};

inline constexpr std::array<CurveInfo, 3> k_curves = {{
    {Curve::p256, "P-256", "prime256v1", 32},
    {Curve::p384, "P-384", "secp384r1", 48},
    {Curve::ed25519, "Ed25519", "", 32},
}};

inline const CurveInfo& curve_info(Curve curve) {
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

// The key type and curve algorithm `alg` needs (keys.cpp).
KeyType alg_key_type(Alg alg);
Curve alg_curve(Alg alg);

// Whether `pkey` holds BIGNUM parameter `name` (keys.cpp).
bool has_bn_param(EVP_PKEY* pkey, const char* name);

// What `pkey` is; fails with unsupported for key types and curves we do not serve (keys.cpp).
Result<KeyFacts> inspect(EVP_PKEY* pkey);

// The RFC 7638 required members: exactly what the thumbprint hashes (jwk.cpp).
Result<json::Json> public_members(EVP_PKEY* pkey, const KeyFacts& facts);

// Adds the private members of `pkey` to `jwk` (jwk.cpp).
Result<void> add_private_members(json::Json& jwk, EVP_PKEY* pkey, const KeyFacts& facts);

// RFC 7638 thumbprint of `required_members` (jwk.cpp).
Result<std::string> thumbprint(const json::Json& required_members);

} // namespace claudegate::keys
