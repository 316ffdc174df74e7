// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"

#include <openssl/types.h> // EVP_PKEY, declared only

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace claudegate::keys {

// JWS algorithms claudegate signs and verifies (RFC 7518, RFC 8037).
enum class Alg { RS256, RS384, RS512, PS256, ES256, ES384, EdDSA, HS256 };

// The registered name of `alg`, e.g. "RS256".
std::string_view alg_name(Alg alg);

// The Alg named exactly `name` (case-sensitive); nullopt for "none",
// "rs256" and anything else we do not support.
std::optional<Alg> alg_from_name(std::string_view name);

// Every supported algorithm, in the order shown to users.
const std::vector<Alg>& all_algs();

enum class KeyType { rsa, ec, okp, oct };

// "RSA", "EC", "OKP", "oct" (the JWK kty).
std::string_view key_type_name(KeyType type);

enum class IncludePrivate { yes, no };

// One signing/verification key bound to exactly one algorithm. Asymmetric
// keys hold an EVP_PKEY parsed once; HS256 keys hold the secret bytes.
// Immutable after construction and safe to share between threads.
class Key {
public:
  // Called now and then while a key is generated (each RSA prime candidate
  // OpenSSL tries), so a terminal can show that a slow RSA-4096 keygen lives.
  using Progress = std::function<void()>;

  // A fresh key for `alg`; `rsa_bits` (2048/3072/4096) applies to RSA
  // algorithms only, and so does `progress`. HS256 gets 32 random bytes.
  // Fails with config on a bad size, internal on an OpenSSL failure.
  static Result<Key> generate(Alg alg, int rsa_bits = 2048, const Progress& progress = {});

  // Load PEM `pem` (PKCS#8, PKCS#1 RSA, SEC1 EC, or a public key SPKI).
  // `alg` binds the key; when absent it is derived from the key (RSA →
  // RS256, P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA). Fails with
  // malformed on unparsable input, unsupported when `alg` does not fit the
  // key (or RSA under 2048 bits, or an unsupported curve).
  static Result<Key> from_pem(std::string_view pem, std::optional<Alg> alg = std::nullopt);

  // Load JWK object `jwk` (RSA, EC P-256/P-384, OKP Ed25519, or oct).
  // The algorithm is `alg`, else the JWK's "alg" member, else derived as
  // for from_pem (oct → HS256). A JWK "alg" that contradicts `alg` fails
  // with unsupported; bad members fail with malformed.
  static Result<Key> from_jwk(const json::Json& jwk, std::optional<Alg> alg = std::nullopt);

  // An HS256 key from raw `secret`; fails with unsupported when shorter than 32 bytes.
  static Result<Key> from_secret(std::string secret, Alg alg = Alg::HS256);

  Alg alg() const { return m_alg; }
  KeyType type() const { return m_type; }
  bool has_private() const { return m_has_private; }
  bool is_symmetric() const { return m_type == KeyType::oct; }

  // RFC 7638 JWK thumbprint (base64url SHA-256), computed at load.
  const std::string& kid() const { return m_kid; }

  // RSA modulus size in bits, curve size for EC/OKP, secret bits for oct.
  int bits() const { return m_bits; }

  // Exact JWS signature length in bytes (RSA: modulus bytes, ES256: 64,
  // ES384: 96, EdDSA: 64, HS256: 32).
  std::size_t signature_size() const;

  // The key as a JWK with kid, alg and use:"sig". IncludePrivate::no gives
  // the public members only; an oct key then fails with unsupported
  // (symmetric keys are never published).
  Result<json::Json> to_jwk(IncludePrivate include) const;

  // Private key as PKCS#8 PEM (asymmetric only); fails with unsupported
  // for oct keys or public-only keys.
  Result<std::string> private_pem() const;

  // The OpenSSL key (asymmetric only; null for oct).
  EVP_PKEY* evp() const { return m_pkey.get(); }

  // The HMAC secret (oct only; empty otherwise).
  std::string_view secret() const { return m_secret; }

  // A copy of this key without private material (oct keys keep their secret).
  Result<Key> public_only() const;

private:
  Key() = default;
  friend struct KeyAccess; // builds keys, reads m_prepared (lib/jose/key_contexts.hpp)

  Alg m_alg = Alg::RS256;
  KeyType m_type = KeyType::rsa;
  bool m_has_private = false;
  int m_bits = 0;
  std::string m_kid;
  std::shared_ptr<EVP_PKEY> m_pkey; // shared: Key is copyable, EVP_PKEY is read-only
  std::string m_secret;
  // OpenSSL contexts initialised once for this key's alg, which signature::
  // copies per operation (jose-internal: lib/jose/key_contexts.hpp); null
  // when not prepared. Read-only templates, shared by copies.
  std::shared_ptr<const void> m_prepared;
};

} // namespace claudegate::keys
