// SPDX-License-Identifier: Apache-2.0
// Helpers for the JOSE tests: hand-built compact tokens, cached keys, pinned randomness.
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/jose/base64url.hpp"
#include "claudegate/jose/keys.hpp"
#include "claudegate/jose/signature.hpp"

#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace claudegate::test {

inline std::string b64(std::string_view bytes) {
  return base64url::encode(bytes);
}

// "<b64 header>.<b64 payload>" from raw JSON text, exactly as given.
inline std::string signing_input(std::string_view header_json, std::string_view payload_json) {
  return b64(header_json) + "." + b64(payload_json);
}

// A compact token whose signature is `sig` (raw bytes), not necessarily valid.
inline std::string compact(std::string_view header_json, std::string_view payload_json,
                           std::string_view sig) {
  return signing_input(header_json, payload_json) + "." + b64(sig);
}

// A compact token signed correctly with `key` over arbitrary header bytes,
// bypassing jws::sign's header rules so decode's own checks can be probed.
inline std::string raw_signed(const keys::Key& key, std::string_view header_json,
                              std::string_view payload_json) {
  const auto input = signing_input(header_json, payload_json);
  const auto sig = signature::sign(key.alg(), key, input);
  REQUIRE_MESSAGE(sig.has_value(), (sig ? std::string() : sig.error().message));
  return input + "." + b64(*sig);
}

// The public half of asymmetric `key` as SPKI PEM ("BEGIN PUBLIC KEY"),
// as a peer would be handed it; unsupported for an HS256 secret.
inline Result<std::string> public_pem(const keys::Key& key) {
  if (key.is_symmetric()) {
    return fail(Errc::unsupported, "HS256 secrets have no public key");
  }
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.evp()) != 1) {
    return fail(Errc::internal, "writing public key PEM failed");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

// One generated key per algorithm for the whole test run (RSA generation is slow).
inline const keys::Key& cached_key(keys::Alg alg) {
  static std::map<keys::Alg, keys::Key> keys;
  auto it = keys.find(alg);
  if (it == keys.end()) {
    auto key = keys::Key::generate(alg);
    REQUIRE_MESSAGE(key.has_value(), (key ? std::string() : key.error().message));
    it = keys.emplace(alg, std::move(*key)).first;
  }
  return it->second;
}

// Bytes 0, 1, 2, … so a jti is predictable.
class CountingRandom final : public RandomSource {
public:
  void fill(std::span<unsigned char> out) override {
    for (auto& byte : out) {
      byte = m_next++;
    }
  }

private:
  unsigned char m_next = 0;
};

inline std::string code_of(Errc code) {
  return std::string(errc_code(code));
}

// The stable code of a failed result, or "ok".
template <typename T> std::string code_of(const Result<T>& r) {
  return r ? std::string("ok") : code_of(r.error().code);
}

template <typename T> std::string message_of(const Result<T>& r) {
  return r ? std::string() : r.error().message;
}

inline bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

} // namespace claudegate::test
