// SPDX-License-Identifier: Apache-2.0
// Key generation: RSA, EC and Ed25519 key pairs, HS256 secrets.
#include "claudegate/jose/keys.hpp"

#include "claudegate/base/clock.hpp"
#include "key_contexts.hpp"
#include "key_facts.hpp"
#include "openssl_util.hpp"

#include <openssl/rsa.h>

namespace claudegate::keys {

namespace {

constexpr std::size_t k_generated_secret_bytes = 32;

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
} // namespace

Result<Key> Key::generate(Alg alg, int rsa_bits, const Progress& progress) {
  if (alg == Alg::HS256) {
    SystemRandom random;
    return KeyAccess::from_secret(random.bytes(k_generated_secret_bytes), alg);
  }
  auto pkey = generate_pkey(alg, rsa_bits, progress);
  if (!pkey) {
    return propagate(pkey);
  }
  return KeyAccess::from_pkey(std::move(*pkey), alg);
}
} // namespace claudegate::keys
