// SPDX-License-Identifier: Apache-2.0
// Internal: RAII owners for OpenSSL objects and error-queue reporting.
#pragma once

#include "claudegate/base/errors.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>

namespace claudegate::ossl {

// A unique_ptr deleter calling OpenSSL's free function `Free`.
template <auto Free> struct Deleter {
  template <typename T> void operator()(T* p) const noexcept { Free(p); }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<&EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<&EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<&EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<&BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<&BN_clear_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<&OSSL_PARAM_BLD_free>>;
using ParamsPtr = std::unique_ptr<OSSL_PARAM, Deleter<&OSSL_PARAM_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<&ECDSA_SIG_free>>;
using MacPtr = std::unique_ptr<EVP_MAC, Deleter<&EVP_MAC_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, Deleter<&EVP_MAC_CTX_free>>;
using DecoderCtxPtr = std::unique_ptr<OSSL_DECODER_CTX, Deleter<&OSSL_DECODER_CTX_free>>;

} // namespace claudegate::ossl

namespace claudegate::ossl {

// The bytes of `s` as OpenSSL wants them.
inline const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

inline unsigned char* bytes(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

// Drain OpenSSL's thread-local error queue into one line, so a later
// operation never reports a stale error.
inline std::string take_errors() {
  std::string text;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    std::array<char, 256> line{};
    ERR_error_string_n(code, line.data(), line.size());
    if (!text.empty()) {
      text += "; ";
    }
    text += line.data();
  }
  return text;
}

// Discard queued errors after an expected failure (e.g. a signature that does not verify).
inline void clear_errors() {
  ERR_clear_error();
}

// An internal error: `what` failed, with OpenSSL's own reason appended.
inline std::unexpected<Error> fail_openssl(std::string what, Errc code = Errc::internal) {
  const std::string reason = take_errors();
  if (!reason.empty()) {
    what += " (" + reason + ")";
  }
  return fail(code, std::move(what));
}

// An OpenSSL failure in an operation that cannot fail on good input (signing,
// hashing, key generation): internal, with what the operator can do about it.
inline std::unexpected<Error> fail_crypto(std::string what) {
  auto out = fail_openssl(std::move(what));
  out.error().message +=
      "; OpenSSL failed, not the input: retry, and check the OpenSSL installation if it persists";
  return out;
}

// Everything written to memory BIO `bio`.
inline std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data);
  if (size <= 0 || data == nullptr) {
    return {};
  }
  return {data, static_cast<std::size_t>(size)};
}

// The SHA-256 digest (32 raw bytes) of `data`.
inline Result<std::string> sha256(std::string_view data) {
  std::string digest(32, '\0');
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), bytes(digest), &length, EVP_sha256(), nullptr) != 1) {
    return fail_crypto("computing SHA-256");
  }
  return digest;
}

// Overwrites secret bytes before they are released.
inline void cleanse(std::string& secret) {
  if (!secret.empty()) {
    OPENSSL_cleanse(secret.data(), secret.size());
  }
}

} // namespace claudegate::ossl
