// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/jose/keys.hpp"

#include <string>
#include <string_view>

// The JWS signature primitive over arbitrary bytes (RFC 7518 §3): what the
// Wycheproof vectors drive directly, and what jws:: builds on.
namespace claudegate::signature {

// Sign `input` with private `key` under `alg`, giving the JWS signature
// bytes (raw r‖s for ECDSA). Fails with unsupported when `alg` is not the
// key's algorithm or the key has no private part, internal on OpenSSL failure.
Result<std::string> sign(keys::Alg alg, const keys::Key& key, std::string_view input);

// Verify JWS signature `sig` over `input` with `key` under `alg`. Fails with
// unsupported when `alg` is not exactly the key's algorithm (so an RSA key
// is never used as an HMAC secret), bad_signature when `sig` has the wrong
// length or does not verify (HMAC compared in constant time).
Result<void> verify(keys::Alg alg, const keys::Key& key, std::string_view input, std::string_view sig);

} // namespace claudegate::signature
