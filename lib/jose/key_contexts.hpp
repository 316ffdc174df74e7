// SPDX-License-Identifier: Apache-2.0
// Internal to jose, part of the keys module: the OpenSSL contexts a Key is
// prepared with once at load (keys.cpp) and that signature.cpp copies per
// operation, and how a context is initialised afresh. signature depends on
// keys, never the other way round.
#pragma once

#include "claudegate/jose/keys.hpp"
#include "openssl_util.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace claudegate::keys {

enum class Direction { sign, verify };

// Per-key templates: each operation copies one (EVP_MD_CTX_copy_ex,
// EVP_MAC_CTX_dup), which only reads the source, so a Key holding them stays
// safe to share between threads. Saves the provider fetches and key setup
// that a fresh EVP_DigestVerifyInit / EVP_MAC_init pays on every call.
struct PreparedContexts {
  ossl::MdCtxPtr verify; // DigestVerify for the key's alg (asymmetric keys)
  ossl::MdCtxPtr sign;   // DigestSign (asymmetric keys with a private part)
  ossl::MacCtxPtr mac;   // HMAC-SHA256 keyed with the secret (oct keys)
};

// Builds Key values (keys.cpp) and reads the contexts they were prepared
// with: the only code allowed to touch Key's members.
struct KeyAccess {
  // A Key over `pkey` bound to `requested` (else derived from the key).
  // Fails with unsupported when the algorithm does not fit the key.
  static Result<Key> from_pkey(ossl::PkeyPtr pkey, std::optional<Alg> requested);
  // An oct Key over `secret` for `alg`; fails with unsupported when too short.
  static Result<Key> from_secret(std::string secret, Alg alg);
  // The templates `key` was prepared with; null when none could be prepared.
  static const PreparedContexts* prepared(const Key& key) {
    return static_cast<const PreparedContexts*>(key.m_prepared.get());
  }
};

// A digest context for `alg` over `key` in `direction`, with the padding JWS
// prescribes. Fails with internal when OpenSSL fails.
Result<ossl::MdCtxPtr> fresh_context(Alg alg, const Key& key, Direction direction);

// Fails with unsupported when `secret` is shorter than an HS256 key must be.
Result<void> check_hmac_key(std::string_view secret);

// A fresh HMAC-SHA256 context keyed with `secret`, or null.
ossl::MacCtxPtr keyed_hmac(std::string_view secret);

// The templates for `key`; null when OpenSSL cannot prepare them, in which
// case every operation initialises afresh and reports the failure then.
std::shared_ptr<const PreparedContexts> prepare(const Key& key);

} // namespace claudegate::keys
