// SPDX-License-Identifier: Apache-2.0
#include "key_contexts.hpp"

#include <openssl/rsa.h>

#include <array>

namespace claudegate::keys {

namespace {

constexpr std::size_t k_min_hmac_key_bytes = 32;
constexpr int k_pss_salt_bytes = 32; // RFC 7518 §3.5: salt length = hash length

// The OpenSSL digest name for `alg`; nullptr for EdDSA, which hashes internally.
const char* digest_name(Alg alg) {
  switch (alg) {
  case Alg::RS384:
  case Alg::ES384:
    return "SHA384";
  case Alg::RS512:
    return "SHA512";
  case Alg::EdDSA:
    return nullptr;
  default:
    return "SHA256";
  }
}

// The HMAC implementation, fetched once and shared (EVP_MAC is immutable after fetch).
EVP_MAC* hmac_implementation() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

} // namespace

Result<ossl::MdCtxPtr> fresh_context(Alg alg, const Key& key, Direction direction) {
  ossl::MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx) {
    return ossl::fail_crypto("allocating a digest context");
  }
  const int init =
      direction == Direction::sign
          ? EVP_DigestSignInit_ex(ctx.get(), &pctx, digest_name(alg), nullptr, nullptr, key.evp(), nullptr)
          : EVP_DigestVerifyInit_ex(ctx.get(), &pctx, digest_name(alg), nullptr, nullptr, key.evp(), nullptr);
  if (init != 1) {
    return ossl::fail_crypto("initialising " + std::string(alg_name(alg)));
  }
  if (alg == Alg::PS256) {
    // MGF1 follows the message digest (SHA-256); the salt length is fixed, also on verify.
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
        || EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", nullptr) != 1
        || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, k_pss_salt_bytes) != 1) {
      return ossl::fail_crypto("configuring RSASSA-PSS");
    }
  } else if (key.type() == KeyType::rsa && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    return ossl::fail_crypto("configuring RSASSA-PKCS1-v1_5");
  }
  return ctx;
}

Result<void> check_hmac_key(std::string_view secret) {
  if (secret.size() < k_min_hmac_key_bytes) {
    return fail(Errc::unsupported, "HS256 key of " + std::to_string(secret.size())
                                       + " bytes is too short (minimum "
                                       + std::to_string(k_min_hmac_key_bytes) + ")");
  }
  return {};
}

ossl::MacCtxPtr keyed_hmac(std::string_view secret) {
  ossl::MacCtxPtr ctx(hmac_implementation() != nullptr ? EVP_MAC_CTX_new(hmac_implementation()) : nullptr);
  std::string digest = "SHA256"; // OSSL_PARAM wants a mutable buffer
  const std::array<OSSL_PARAM, 2> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest.data(), 0), OSSL_PARAM_construct_end()};
  if (!ctx || EVP_MAC_init(ctx.get(), ossl::bytes(secret), secret.size(), params.data()) != 1) {
    return nullptr;
  }
  return ctx;
}

std::shared_ptr<const PreparedContexts> prepare(const Key& key) {
  auto out = std::make_shared<PreparedContexts>();
  if (key.is_symmetric()) {
    out->mac = check_hmac_key(key.secret()) ? keyed_hmac(key.secret()) : nullptr;
    return out->mac ? out : nullptr;
  }
  auto verify = fresh_context(key.alg(), key, Direction::verify);
  auto sign = key.has_private() ? fresh_context(key.alg(), key, Direction::sign) : ossl::MdCtxPtr();
  if (!verify || !sign) {
    ossl::clear_errors(); // reported again, with context, by the operation that needs it
    return nullptr;
  }
  out->verify = std::move(*verify);
  out->sign = std::move(*sign);
  return out;
}

} // namespace claudegate::keys
