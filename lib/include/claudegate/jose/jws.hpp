// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"
#include "claudegate/jose/keys.hpp"

#include <cstddef>
#include <string>
#include <string_view>

// Compact JWS (RFC 7515 §7.1) with claudegate's strict decoding rules (DESIGN.md §4).
namespace claudegate::jws {

constexpr std::size_t k_max_token_bytes = 8 * 1024;

struct DecodedToken {
  json::Json header;                // protected header object
  json::Json payload;               // claims object
  std::string signing_input;        // "<header b64>.<payload b64>" exactly as received
  std::string signature;            // decoded signature bytes
  keys::Alg alg = keys::Alg::RS256; // header alg, already known to be supported
  std::string kid;                  // header kid, empty when absent
  std::string typ;                  // header typ, empty when absent
};

// Decode `token` without checking the signature. Enforces: ≤ 8 KiB before
// decoding, exactly three segments, strict base64url, JSON objects without
// duplicate members (bounded depth), a supported `alg` (never "none" or a
// case variant), string kid/typ, and refuses crit, b64, jku, x5u, jwk, x5c,
// zip, cty and unknown header parameters. Fails with malformed or unsupported.
Result<DecodedToken> decode(std::string_view token);

// Check `decoded`'s signature with `key`: the header alg must equal the
// key's alg exactly and the signature must have the key's exact length.
// Fails with unsupported (alg mismatch) or bad_signature.
Result<void> verify_signature(const DecodedToken& decoded, const keys::Key& key);

// Serialize `header` and `payload` compactly and sign with `key`; the
// header's "alg" must equal the key's alg. Fails with unsupported (alg
// mismatch, a header decode would refuse, a public-only key), malformed
// (not objects, invalid UTF-8) or internal.
Result<std::string> sign(const json::Json& header, const json::Json& payload, const keys::Key& key);

// Sign the exact bytes `header_json` (a JSON object) and `payload` with
// `key`: for callers that fix member order or reproduce known vectors
// byte for byte. Same header rules and failures as sign.
Result<std::string> sign_serialized(std::string_view header_json, std::string_view payload,
                                    const keys::Key& key);

} // namespace claudegate::jws
