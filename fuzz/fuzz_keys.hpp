// SPDX-License-Identifier: Apache-2.0
// The fixed key set, policy and clock of the token_verify fuzz target, shared
// with the seed generator (which signs valid tokens with these keys so the
// fuzzer reaches the signature and claims checks) and the regression replay.
// These keys were generated for fuzzing only and protect nothing.
#pragma once

#include "claudegate/jose/claims.hpp"
#include "claudegate/jose/keys.hpp"
#include "claudegate/jose/keyset.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace claudegate::fuzz {

// Instant every fuzz token is checked at (2026-01-01T00:00:00Z).
constexpr UnixSeconds k_now = 1767225600;

inline constexpr std::string_view k_hmac_secret = "claudegate-fuzz-hmac-secret-32by";

inline constexpr std::string_view k_es256_pem = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPb9EV7PWfRbLd2CN
Drgt5I0a6R0kI2lR0uY62sV5+IuhRANCAAQGJGeGoxxBkN8cQa2a8dMGYYtN+8gt
waJwIyaqOxo2A6Rp8j8m67WaYnauAOkR94tNDk6CWVaU0Lgn5d1zbT8Y
-----END PRIVATE KEY-----
)";

inline constexpr std::string_view k_eddsa_pem = R"(-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIF2LQr3lJZKo+UAaBBunAh4Y5BArIab4ZpGwvQyQ2NGy
-----END PRIVATE KEY-----
)";

inline constexpr std::string_view k_rs256_pem = R"(-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDtbpgC43zkMjYn
+/9xIwVXBtPJ+u/ITZQGGZ5UbNoKHAnv1+/Xv5MQeYxKABX4BdpsCgrzCTA0BD/5
Jf3h992IiXGvLJdZCYViMVti6b1iUcVoVlEdyDI8omCmhb4F0YQsWL0GL0XK6e0e
MIfE9wBK05Oeh0aE0DA0HR3l1S4f7lUJ1vtl3aYFKTZx5FbW/kFtE/DiNLeUEJ8u
9nelgRB2MAOEuyxZhxtZtmkLK1/BawWIWquC9IQj6px0T2x76bpLA9e/IHlBdmXt
FMw2KjOM/qBvg0qKkfNP9FmMn+jsSGhLukK0ZW2Ix85fwIQpBkRPgxtUq0/yvRdz
oQ8H2wMXAgMBAAECggEABzn6FLnhhjFtOS4NFzyq3PxFKmLWEh5/zbm5+kEFtPj5
Cy4RwAm1+dsp8JymguNsiVMAvpWPmW8nf31MTe6Dr3nx/uWYaMGSSvGpiogd4uvI
Ttz6DslnlmQKQ9okI9932RI7/X/KMybNoOQZst5QyaTI/o9aGxDUWmVW1nrRyfsK
cI2Ss0H0OoBtccGACOhYTOpxW601YupySIrpxk4GobEVp2h6VZX/3V12/GWDOeNp
DBnCURC9Z3QwCJTzY92p0ZHjBTesY/laoE4MO4FUVMqPNZ6ndABoxPmnHAnGvHhK
XIX+0IM5n+bmrIeW0365pzEye6TFomPbBnBcdLabpQKBgQD3peOJhneHCDaYNM1q
LygqjfljJMpabL4ptbAyJQQ0xaP3aLsUShtq+pvbJsxPbJ+S7Ik3ZOANAxO8LBEf
+1p20mRICxBKN+1cA+/myRNz67p2JLrh/KjeRB2/R7ObLs6pmeyZza2hGlxORslc
PDBa95bpFH3Kq6gT3SQINcnKGwKBgQD1cIDhIBwa25CW/jQgJ9fNE6nLRqCIh1ZF
mpU/h4aCaXoBiKjKckhC7OneLPjLiRgBdPkfJKK2VDjxLs38f8VjYvWyJ8vc96id
hI4DuzAxWp9i94BD84Wcs0Z55Zp94hiYPsaETLQPHhMymxTWu47AJpJA1P9klpLD
q81CX386tQKBgQC2Ll9ZSIad27jt98o1l0NhKtiPyvzh0KWEYZihCwIxIEQjOfSG
VI4fAQWvDre2ph4uI7w9+AOrDtxxzak7cdl3GAeVyC3Pq5z92BegG8Qnvv6I8zRY
E1rXSBzqHoFOY/y8X/PioaBdp9rH6uMu60hXY1StWtm/QtB+7GwZbhhoiQKBgQCk
z+87PTyiLF5jhj+qeBbJdzLFdZ/HDlo4Ux11k6QXXoy3CvWNPECZ8Ez7DGflBSJB
mDLRXuCEXvn9uthHfeUmYAVspJyYvRVU8PYMO16ZRalR47EV8CkAmMHyiOO9NF4f
ncfgf0FKBYAOs2TC7R9mmIANWPpGqXXUP0GOGGJvIQKBgAPxnq+nIuG6Qqe5SZ7P
TsbDSVAnuqOpr/iOgtJKWqn8gcDVc14wcvGwctoN6uVxtQRLTDx668QVwLq1RpFH
69apYKtfSTV1VcwqPhC3ofFmqVL5pJwGEr6uGwgH6HI6dWPDrA6D6hGkeRTTInyH
aA4PEe4GdXhWsdkQCajFyrdO
-----END PRIVATE KEY-----
)";

// Stop the run with `what` when an invariant breaks: libFuzzer reports the
// abort as a crash, the regression replay as a failed test.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

// `result`'s value, aborting when a fixed fuzz key fails to load.
inline keys::Key loaded(Result<keys::Key> result) {
  if (!result) {
    std::fprintf(stderr, "fuzz key: %s\n", result.error().message.c_str());
  }
  require(result.has_value(), "a built-in fuzz key failed to load");
  return std::move(*result);
}

// The signing keys: HS256, RS256, ES256 and EdDSA, one per family.
inline const std::vector<keys::Key>& signing_keys() {
  static const std::vector<keys::Key> keys = {
      loaded(keys::Key::from_secret(std::string(k_hmac_secret))), loaded(keys::Key::from_pem(k_rs256_pem)),
      loaded(keys::Key::from_pem(k_es256_pem)), loaded(keys::Key::from_pem(k_eddsa_pem))};
  return keys;
}

// The verification key set (the signing keys under their thumbprint kids).
inline const keyset::KeySet& key_set() {
  static const keyset::KeySet keys = [] {
    keyset::KeySet set;
    for (const auto& key : signing_keys()) {
      set.add(key);
    }
    return set;
  }();
  return keys;
}

// The gateway's usual policy: issuer, audience and scope enforced.
inline const claims::VerifyPolicy& policy() {
  static const claims::VerifyPolicy value = [] {
    claims::VerifyPolicy p;
    p.issuer = "claudegate";
    p.audiences = {"claude-proxy"};
    p.required_scopes = {"claude:messages"};
    return p;
  }();
  return value;
}

} // namespace claudegate::fuzz
