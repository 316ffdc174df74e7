// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/signature.hpp"

#include "key_contexts.hpp"
#include "openssl_util.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <span>

namespace claudegate::signature {

namespace {

constexpr std::size_t k_hmac_size = 32;

using keys::Direction;

bool is_ecdsa(keys::Alg alg) {
  return alg == keys::Alg::ES256 || alg == keys::Alg::ES384;
}

// The algorithm comes from the key, never from the token (DESIGN.md §4).
Result<void> check_binding(keys::Alg alg, const keys::Key& key) {
  if (alg != key.alg()) {
    return fail(Errc::unsupported, "algorithm " + std::string(alg_name(alg)) + " does not match the key's "
                                       + std::string(alg_name(key.alg())));
  }
  return {};
}

// The key's prepared template for `direction`, or null.
const EVP_MD_CTX* template_for(const keys::Key& key, Direction direction) {
  const auto* prepared = keys::KeyAccess::prepared(key);
  if (prepared == nullptr) {
    return nullptr;
  }
  return direction == Direction::sign ? prepared->sign.get() : prepared->verify.get();
}

// A context for one operation: a copy of the key's template when there is
// one (no provider fetches), else initialised afresh.
Result<ossl::MdCtxPtr> digest_context(keys::Alg alg, const keys::Key& key, Direction direction) {
  const EVP_MD_CTX* prepared = template_for(key, direction);
  if (prepared == nullptr) {
    return keys::fresh_context(alg, key, direction);
  }
  ossl::MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_MD_CTX_copy_ex(ctx.get(), prepared) != 1) {
    return ossl::fail_crypto("copying a prepared " + std::string(alg_name(alg)) + " context");
  }
  // One-shot use: lets EVP_DigestVerify/Sign finish without duplicating the context again.
  EVP_MD_CTX_set_flags(ctx.get(), EVP_MD_CTX_FLAG_FINALISE);
  return ctx;
}

// JWS carries ECDSA as fixed-width r‖s (RFC 7518 §3.4); OpenSSL speaks DER:
// SEQUENCE { INTEGER r, INTEGER s }. Written and read here directly, which
// costs a fraction of going through BIGNUMs and ECDSA_SIG.
constexpr unsigned char k_der_sequence = 0x30;
constexpr unsigned char k_der_integer = 0x02;
constexpr std::size_t k_der_short_length_max = 0x7f;
constexpr unsigned char k_der_one_length_byte = 0x81;

// DER length octets of `length` (short form, or 0x81 and one byte; ECDSA up to P-384 needs no more).
void append_der_length(std::string& out, std::size_t length) {
  if (length > k_der_short_length_max) {
    out.push_back(static_cast<char>(k_der_one_length_byte));
  }
  out.push_back(static_cast<char>(length));
}

// The minimal DER INTEGER of the unsigned big-endian `magnitude`.
void append_der_integer(std::string& out, std::string_view magnitude) {
  const auto first = magnitude.find_first_not_of('\0');
  magnitude = first == std::string_view::npos ? std::string_view() : magnitude.substr(first);
  // A set top bit would read as negative: prefix a zero byte (also the encoding of zero).
  const bool pad = magnitude.empty() || (static_cast<unsigned char>(magnitude.front()) & 0x80) != 0;
  out.push_back(static_cast<char>(k_der_integer));
  append_der_length(out, magnitude.size() + (pad ? 1 : 0));
  if (pad) {
    out.push_back('\0');
  }
  out.append(magnitude);
}

// The DER signature of JWS r‖s `raw` (length already checked against the key, at most 2×66 bytes).
std::string raw_to_der(std::string_view raw) {
  const auto half = raw.size() / 2;
  std::string integers;
  append_der_integer(integers, raw.substr(0, half));
  append_der_integer(integers, raw.substr(half));
  std::string out(1, static_cast<char>(k_der_sequence));
  append_der_length(out, integers.size());
  return out.append(integers);
}

// Reads a DER length at `pos`, advancing it; nullopt when malformed or past the end.
std::optional<std::size_t> read_der_length(std::string_view der, std::size_t& pos) {
  if (pos >= der.size()) {
    return std::nullopt;
  }
  std::size_t length = static_cast<unsigned char>(der[pos++]);
  if (length == k_der_one_length_byte && pos < der.size()) {
    length = static_cast<unsigned char>(der[pos++]);
  } else if (length > k_der_short_length_max) {
    return std::nullopt;
  }
  return length <= der.size() - pos ? std::optional(length) : std::nullopt;
}

// Reads the DER INTEGER at `pos` into `out` right-aligned over out.size() bytes.
bool read_der_integer(std::string_view der, std::size_t& pos, std::span<char> out) {
  if (pos >= der.size() || static_cast<unsigned char>(der[pos++]) != k_der_integer) {
    return false;
  }
  const auto length = read_der_length(der, pos);
  if (!length || *length == 0) {
    return false;
  }
  auto value = der.substr(pos, *length);
  pos += *length;
  const auto first = value.find_first_not_of('\0');
  value = first == std::string_view::npos ? std::string_view() : value.substr(first);
  if (value.size() > out.size()) {
    return false;
  }
  std::copy(value.begin(), value.end(), out.end() - static_cast<std::ptrdiff_t>(value.size()));
  return true;
}

// Reads the SEQUENCE header at the start of `der`, advancing `pos`; true when its content runs to the end.
bool read_der_sequence(std::string_view der, std::size_t& pos) {
  if (der.empty() || static_cast<unsigned char>(der[0]) != k_der_sequence) {
    return false;
  }
  pos = 1;
  const auto length = read_der_length(der, pos);
  return length && *length == der.size() - pos;
}

// OpenSSL's DER signature as JWS r‖s of `raw_size` bytes.
Result<std::string> der_to_raw(std::string_view der, std::size_t raw_size) {
  std::string raw(raw_size, '\0');
  std::size_t pos = 0;
  const auto first = std::span<char>(raw).first(raw_size / 2);
  const auto second = std::span<char>(raw).subspan(raw_size / 2);
  if (!read_der_sequence(der, pos) || !read_der_integer(der, pos, first)
      || !read_der_integer(der, pos, second) || pos != der.size()) {
    return fail(Errc::internal, "decoding an ECDSA signature: OpenSSL returned malformed DER");
  }
  return raw;
}

// A keyed context for one MAC: a copy of the key's template, else keyed afresh.
ossl::MacCtxPtr hmac_context(const keys::Key& key) {
  const auto* prepared = keys::KeyAccess::prepared(key);
  if (prepared != nullptr && prepared->mac) {
    return ossl::MacCtxPtr(EVP_MAC_CTX_dup(prepared->mac.get()));
  }
  return keys::keyed_hmac(key.secret());
}

Result<std::string> hmac_sha256(const keys::Key& key, std::string_view input) {
  if (auto r = keys::check_hmac_key(key.secret()); !r) {
    return propagate(r);
  }
  const ossl::MacCtxPtr ctx = hmac_context(key);
  std::string tag(k_hmac_size, '\0');
  std::size_t length = 0;
  if (!ctx || EVP_MAC_update(ctx.get(), ossl::bytes(input), input.size()) != 1
      || EVP_MAC_final(ctx.get(), ossl::bytes(tag), &length, tag.size()) != 1 || length != k_hmac_size) {
    return ossl::fail_crypto("computing HMAC-SHA256");
  }
  return tag;
}

Result<std::string> digest_sign(keys::Alg alg, const keys::Key& key, std::string_view input) {
  auto ctx = digest_context(alg, key, Direction::sign);
  if (!ctx) {
    return propagate(ctx);
  }
  std::size_t length = 0;
  if (EVP_DigestSign(ctx->get(), nullptr, &length, ossl::bytes(input), input.size()) != 1) {
    return ossl::fail_crypto("sizing the " + std::string(alg_name(alg)) + " signature");
  }
  std::string sig(length, '\0');
  if (EVP_DigestSign(ctx->get(), ossl::bytes(sig), &length, ossl::bytes(input), input.size()) != 1) {
    return ossl::fail_crypto("signing with " + std::string(alg_name(alg)));
  }
  sig.resize(length);
  return is_ecdsa(alg) ? der_to_raw(sig, key.signature_size()) : Result<std::string>(std::move(sig));
}

Result<void> digest_verify(keys::Alg alg, const keys::Key& key, std::string_view input,
                           std::string_view sig) {
  std::string der;
  if (is_ecdsa(alg)) {
    der = raw_to_der(sig);
    sig = der;
  }
  auto ctx = digest_context(alg, key, Direction::verify);
  if (!ctx) {
    return propagate(ctx);
  }
  if (EVP_DigestVerify(ctx->get(), ossl::bytes(sig), sig.size(), ossl::bytes(input), input.size()) != 1) {
    ossl::clear_errors(); // an expected outcome, not an internal error
    return fail(Errc::bad_signature, std::string(alg_name(alg)) + " signature does not verify");
  }
  return {};
}

Result<void> hmac_verify(const keys::Key& key, std::string_view input, std::string_view sig) {
  auto expected = hmac_sha256(key, input);
  if (!expected) {
    return propagate(expected);
  }
  // Constant time: the comparison must not reveal how many leading bytes matched.
  if (CRYPTO_memcmp(expected->data(), sig.data(), k_hmac_size) != 0) {
    return fail(Errc::bad_signature, "HS256 signature does not verify");
  }
  return {};
}

} // namespace

Result<std::string> sign(keys::Alg alg, const keys::Key& key, std::string_view input) {
  if (auto bound = check_binding(alg, key); !bound) {
    return propagate(bound);
  }
  if (!key.has_private()) {
    return fail(Errc::unsupported, "cannot sign with a public key (kid " + key.kid() + ")");
  }
  if (alg == keys::Alg::HS256) {
    return hmac_sha256(key, input);
  }
  return digest_sign(alg, key, input);
}

Result<void> verify(keys::Alg alg, const keys::Key& key, std::string_view input, std::string_view sig) {
  if (auto bound = check_binding(alg, key); !bound) {
    return bound;
  }
  // Exact length first: truncated MACs and padded signatures never reach the primitive.
  if (sig.size() != key.signature_size()) {
    return fail(Errc::bad_signature, std::string(alg_name(alg)) + " signature must be "
                                         + std::to_string(key.signature_size()) + " bytes, got "
                                         + std::to_string(sig.size()));
  }
  if (alg == keys::Alg::HS256) {
    return hmac_verify(key, input, sig);
  }
  return digest_verify(alg, key, input, sig);
}

} // namespace claudegate::signature
