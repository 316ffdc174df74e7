// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace claudegate {

// What went wrong, in the terms a caller acts on. The stable code string of
// each value (errc_code) is part of the --json contract.
enum class Errc {
  malformed,      // token or input not well-formed
  bad_signature,  // signature does not verify
  unknown_key,    // no key with that kid
  expired,        // exp passed (beyond leeway)
  not_yet_valid,  // nbf/iat in the future (beyond leeway)
  claim_mismatch, // iss/aud/typ/scope/required claim/lifetime policy failed
  revoked,        // jti, subject or family revoked
  refresh_reuse,  // used refresh token presented again; family revoked
  unsupported,    // algorithm, key type or feature we refuse
  io,             // file system
  storage,        // database
  config,         // configuration or usage error
  internal,       // OpenSSL or other library failure
};

// The stable machine-readable code of `errc`, e.g. "bad_signature".
std::string_view errc_code(Errc errc);

struct Error {
  Errc code;
  std::string message; // human text: what failed, expected vs received
};

template <typename T> using Result = std::expected<T, Error>;

// An unexpected<Error> with `code` and `message`, for `return fail(...)`.
std::unexpected<Error> fail(Errc code, std::string message);

// The error of failed `result` as it is, for a caller whose own result has
// the same error type: `if (!key) { return propagate(key); }`. The one way
// errors travel up (docs/CODING.md), never reworded on the way.
template <typename T, typename E> std::unexpected<E> propagate(const std::expected<T, E>& result) {
  return std::unexpected(result.error());
}

} // namespace claudegate
