// SPDX-License-Identifier: Apache-2.0
// PEM import (PKCS#8, PKCS#1 RSA, SEC1 EC, SubjectPublicKeyInfo) and export.
#include "claudegate/jose/keys.hpp"

#include "key_contexts.hpp"
#include "key_facts.hpp"
#include "openssl_util.hpp"

#include <openssl/pem.h>

#include <optional>

namespace claudegate::keys {

namespace {

// Never prompt on the terminal for an encrypted key: refuse instead.
int refuse_passphrase(char*, std::size_t, std::size_t*, const OSSL_PARAM*, void*) {
  return 0;
}

struct PemKeyBlock {
  std::string_view text; // from the BEGIN line to the end of the input
  int selection;         // what the block holds: EVP_PKEY_KEYPAIR or EVP_PKEY_PUBLIC_KEY
};

// The first PEM block holding a key, skipping others such as the
// "EC PARAMETERS" block that `openssl ecparam -genkey` writes first.
std::optional<PemKeyBlock> find_key_block(std::string_view pem) {
  constexpr std::string_view k_begin = "-----BEGIN ";
  for (auto pos = pem.find(k_begin); pos != std::string_view::npos; pos = pem.find(k_begin, pos + 1)) {
    const auto label_start = pos + k_begin.size();
    const auto label_end = pem.find("-----", label_start);
    const auto label = pem.substr(label_start, label_end - label_start);
    if (label.ends_with("PRIVATE KEY")) {
      return PemKeyBlock{pem.substr(pos), EVP_PKEY_KEYPAIR};
    }
    if (label.ends_with("PUBLIC KEY")) {
      return PemKeyBlock{pem.substr(pos), EVP_PKEY_PUBLIC_KEY};
    }
  }
  return std::nullopt;
}

// OpenSSL's name for the key type `alg` needs; nullptr when any may do.
const char* decoder_key_type(std::optional<Alg> alg) {
  if (!alg) {
    return nullptr;
  }
  switch (alg_key_type(*alg)) {
  case KeyType::rsa:
    return "RSA";
  case KeyType::ec:
    return "EC";
  case KeyType::okp:
    return "ED25519";
  case KeyType::oct:
    break;
  }
  return nullptr;
}

// `block` decoded by OpenSSL's decoders for `key_type` (nullptr: every key
// type); nullptr when they cannot, with the reason on OpenSSL's error queue.
EVP_PKEY* decode_pem_block(const PemKeyBlock& block, const char* key_type) {
  EVP_PKEY* raw = nullptr;
  const ossl::DecoderCtxPtr ctx(
      OSSL_DECODER_CTX_new_for_pkey(&raw, "PEM", nullptr, key_type, block.selection, nullptr, nullptr));
  if (!ctx || OSSL_DECODER_CTX_set_passphrase_cb(ctx.get(), refuse_passphrase, nullptr) != 1) {
    return nullptr;
  }
  const unsigned char* data = ossl::bytes(block.text);
  std::size_t length = block.text.size();
  if (OSSL_DECODER_from_data(ctx.get(), &data, &length) != 1) {
    EVP_PKEY_free(raw);
    return nullptr;
  }
  return raw; // null when the decoders found no key
}

// Naming the key type `alg` expects spares the decoders trying every type (a
// third of a cold `claudegate verify`'s CPU); a key of another type (an
// RSA-PSS key for PS256, a mismatch) is decoded again untyped, so it gets
// the same diagnostics as before.
Result<ossl::PkeyPtr> decode_pem(std::string_view pem, std::optional<Alg> alg) {
  const auto block = find_key_block(pem);
  if (!block) {
    return fail(Errc::malformed, "no PEM key found (expected PKCS#8, PKCS#1 RSA, SEC1 EC or a PUBLIC KEY)");
  }
  if (block->text.starts_with("-----BEGIN ENCRYPTED")
      || block->text.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos) {
    return fail(Errc::unsupported,
                "encrypted PEM keys are not supported; decrypt it first (openssl pkey -in KEY -out PLAIN)");
  }
  if (const char* key_type = decoder_key_type(alg)) {
    if (EVP_PKEY* typed = decode_pem_block(*block, key_type)) {
      return ossl::PkeyPtr(typed);
    }
    ossl::clear_errors();
  }
  EVP_PKEY* raw = decode_pem_block(*block, nullptr);
  if (raw == nullptr) {
    return ossl::fail_openssl("PEM key could not be decoded", Errc::malformed);
  }
  return ossl::PkeyPtr(raw);
}
} // namespace

Result<Key> Key::from_pem(std::string_view pem, std::optional<Alg> alg) {
  auto pkey = decode_pem(pem, alg);
  if (!pkey) {
    return propagate(pkey);
  }
  return KeyAccess::from_pkey(std::move(*pkey), alg);
}

Result<std::string> Key::private_pem() const {
  if (is_symmetric() || !m_has_private) {
    return fail(Errc::unsupported,
                is_symmetric() ? "HS256 secrets have no PEM form" : "public key has no private part");
  }
  const ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  // PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in OpenSSL 3.
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), m_pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return ossl::fail_crypto("writing private key PEM");
  }
  return ossl::bio_contents(bio.get());
}

} // namespace claudegate::keys
