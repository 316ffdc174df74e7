// SPDX-License-Identifier: Apache-2.0
// JWK import and export (RFC 7517/7518) and the RFC 7638 thumbprint.
#include "claudegate/jose/keys.hpp"

#include "claudegate/jose/base64url.hpp"
#include "key_contexts.hpp"
#include "key_facts.hpp"
#include "openssl_util.hpp"

#include <array>
#include <deque>
#include <utility>

namespace claudegate::keys {

namespace {

// Big-endian bytes of BIGNUM parameter `name`, left-padded to `width` (0: minimal).
Result<std::string> bn_param(EVP_PKEY* pkey, const char* name, std::size_t width = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1) {
    return ossl::fail_openssl(std::string("reading key parameter ") + name);
  }
  const ossl::BignumPtr bn(raw);
  const auto size = std::max(width, static_cast<std::size_t>(BN_num_bytes(bn.get())));
  std::string out(size, '\0');
  if (BN_bn2binpad(bn.get(), ossl::bytes(out), static_cast<int>(size)) < 0) {
    return ossl::fail_openssl(std::string("encoding key parameter ") + name);
  }
  return out;
}

Result<std::string> octet_param(EVP_PKEY* pkey, const char* name, std::size_t size) {
  std::string out(size, '\0');
  std::size_t length = 0;
  if (EVP_PKEY_get_octet_string_param(pkey, name, ossl::bytes(out), out.size(), &length) != 1
      || length != size) {
    return ossl::fail_openssl(std::string("reading key parameter ") + name);
  }
  return out;
}

// Sets JWK member `member` to the base64url of a key parameter, if it could be read.
Result<void> put(json::Json& jwk, const char* member, Result<std::string> value) {
  if (!value) {
    return propagate(value);
  }
  jwk[member] = base64url::encode(*value);
  ossl::cleanse(*value);
  return {};
}

constexpr std::array<std::pair<const char*, const char*>, 5> k_rsa_crt_members = {{
    {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
    {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},
    {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
    {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2},
    {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
}};

Result<void> add_rsa_private_members(json::Json& jwk, EVP_PKEY* pkey) {
  if (auto d = put(jwk, "d", bn_param(pkey, OSSL_PKEY_PARAM_RSA_D)); !d) {
    return d;
  }
  // Keys imported without CRT parameters (n, e, d only) stay that way.
  if (!has_bn_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR1)) {
    return {};
  }
  for (const auto& [member, param] : k_rsa_crt_members) {
    if (auto added = put(jwk, member, bn_param(pkey, param)); !added) {
      return added;
    }
  }
  return {};
}

// Collects OSSL_PARAMs for EVP_PKEY_fromdata; owns the values until build().
class ParamBuilder {
public:
  ParamBuilder() : m_bld(OSSL_PARAM_BLD_new()) {}
  ParamBuilder(const ParamBuilder&) = delete;
  ParamBuilder& operator=(const ParamBuilder&) = delete;
  ~ParamBuilder() {
    for (auto& value : m_values) {
      ossl::cleanse(value);
    }
  }

  void push_bn(const char* name, std::string_view big_endian) {
    m_bns.emplace_back(BN_bin2bn(ossl::bytes(big_endian), static_cast<int>(big_endian.size()), nullptr));
    m_ok =
        m_ok && m_bld && m_bns.back() && OSSL_PARAM_BLD_push_BN(m_bld.get(), name, m_bns.back().get()) == 1;
  }

  void push_octets(const char* name, std::string value) {
    const auto& kept = m_values.emplace_back(std::move(value));
    m_ok =
        m_ok && m_bld && OSSL_PARAM_BLD_push_octet_string(m_bld.get(), name, kept.data(), kept.size()) == 1;
  }

  void push_utf8(const char* name, const char* value) {
    m_ok = m_ok && m_bld && OSSL_PARAM_BLD_push_utf8_string(m_bld.get(), name, value, 0) == 1;
  }

  // An EVP_PKEY of OpenSSL type `type` holding `selection` from the pushed values.
  Result<ossl::PkeyPtr> build(const char* type, int selection) {
    const ossl::ParamsPtr params(m_ok ? OSSL_PARAM_BLD_to_param(m_bld.get()) : nullptr);
    const ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1
        || EVP_PKEY_fromdata(ctx.get(), &raw, selection, params.get()) != 1) {
      return ossl::fail_openssl(std::string("JWK is not a valid ") + type + " key", Errc::malformed);
    }
    return ossl::PkeyPtr(raw);
  }

private:
  ossl::ParamBldPtr m_bld;
  std::deque<ossl::BignumPtr> m_bns;
  std::deque<std::string> m_values; // deque: elements never move while builder refers to them
  bool m_ok = true;
};

bool has_member(const json::Json& jwk, const char* name) {
  return jwk.contains(name);
}

// JWK member `name`, which must be a string when present.
Result<std::optional<std::string>> string_member(const json::Json& jwk, const char* name) {
  const auto it = jwk.find(name);
  if (it == jwk.end()) {
    return std::nullopt;
  }
  if (!it->is_string()) {
    return fail(Errc::malformed, std::string("JWK member \"") + name + "\" must be a string");
  }
  return it->get<std::string>();
}

// The decoded bytes of base64url JWK member `name`; nullopt when absent.
Result<std::optional<std::string>> optional_bytes(const json::Json& jwk, const char* name) {
  auto text = string_member(jwk, name);
  if (!text || !*text) {
    return text;
  }
  auto decoded = base64url::decode(**text);
  if (!decoded) {
    return fail(Errc::malformed, std::string("JWK member \"") + name + "\": " + decoded.error().message);
  }
  if (decoded->empty()) {
    return fail(Errc::malformed, std::string("JWK member \"") + name + "\" is empty");
  }
  return std::optional<std::string>(std::move(*decoded));
}

Result<std::string> required_bytes(const json::Json& jwk, const char* name, std::size_t exact_size = 0) {
  auto value = optional_bytes(jwk, name);
  if (!value) {
    return propagate(value);
  }
  if (!*value) {
    return fail(Errc::malformed, std::string("JWK is missing member \"") + name + "\"");
  }
  if (exact_size != 0 && (*value)->size() != exact_size) {
    return fail(Errc::malformed, std::string("JWK member \"") + name + "\" must be "
                                     + std::to_string(exact_size) + " bytes, got "
                                     + std::to_string((*value)->size()));
  }
  return std::move(**value);
}

// Pushes the CRT members p, q, dp, dq, qi: all or none of them.
Result<void> push_rsa_crt(const json::Json& jwk, ParamBuilder& params) {
  std::size_t present = 0;
  for (const auto& entry : k_rsa_crt_members) {
    if (has_member(jwk, entry.first)) {
      ++present;
    }
  }
  if (present != 0 && present != k_rsa_crt_members.size()) {
    return fail(Errc::malformed, "RSA JWK needs all of p, q, dp, dq, qi or none of them");
  }
  if (present == 0) {
    return {};
  }
  for (const auto& [member, param] : k_rsa_crt_members) {
    auto value = required_bytes(jwk, member);
    if (!value) {
      return propagate(value);
    }
    params.push_bn(param, *value);
    ossl::cleanse(*value);
  }
  return {};
}

Result<ossl::PkeyPtr> rsa_from_jwk(const json::Json& jwk) {
  if (has_member(jwk, "oth")) {
    return fail(Errc::unsupported, "multi-prime RSA keys (\"oth\") are not supported");
  }
  ParamBuilder params;
  auto n = required_bytes(jwk, "n");
  auto e = n ? required_bytes(jwk, "e") : n;
  auto d = e ? optional_bytes(jwk, "d") : propagate(e);
  if (!d) {
    return propagate(d);
  }
  params.push_bn(OSSL_PKEY_PARAM_RSA_N, *n);
  params.push_bn(OSSL_PKEY_PARAM_RSA_E, *e);
  if (!*d && has_member(jwk, "p")) {
    return fail(Errc::malformed, "RSA JWK has CRT members but no \"d\"");
  }
  if (*d) {
    params.push_bn(OSSL_PKEY_PARAM_RSA_D, **d);
    ossl::cleanse(**d);
    if (auto crt = push_rsa_crt(jwk, params); !crt) {
      return propagate(crt);
    }
  }
  return params.build("RSA", *d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY);
}

// A private key whose public half does not match is refused, not silently used.
Result<ossl::PkeyPtr> checked_pair(Result<ossl::PkeyPtr> pkey) {
  if (!pkey) {
    return pkey;
  }
  const ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey->get(), nullptr));
  if (!ctx || EVP_PKEY_pairwise_check(ctx.get()) != 1) {
    return ossl::fail_openssl("JWK private key \"d\" does not match its public key", Errc::malformed);
  }
  return pkey;
}

Result<ossl::PkeyPtr> checked_public(Result<ossl::PkeyPtr> pkey) {
  if (!pkey) {
    return pkey;
  }
  const ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey->get(), nullptr));
  if (!ctx || EVP_PKEY_public_check(ctx.get()) != 1) {
    return ossl::fail_openssl("JWK public key is not a valid curve point", Errc::malformed);
  }
  return pkey;
}

Result<const CurveInfo*> jwk_curve(const json::Json& jwk, KeyType type) {
  auto crv = string_member(jwk, "crv");
  if (!crv) {
    return propagate(crv);
  }
  if (!*crv) {
    return fail(Errc::malformed, "JWK is missing member \"crv\"");
  }
  for (const auto& info : k_curves) {
    if (info.jwk_name == **crv && (type == KeyType::okp) == (info.curve == Curve::ed25519)) {
      return &info;
    }
  }
  return fail(Errc::unsupported, std::string(key_type_name(type)) + " curve \"" + **crv
                                     + "\" is not supported"
                                     + (type == KeyType::okp ? " (use Ed25519)" : " (use P-256 or P-384)"));
}

Result<ossl::PkeyPtr> ec_from_jwk(const json::Json& jwk) {
  auto curve = jwk_curve(jwk, KeyType::ec);
  auto x = curve ? required_bytes(jwk, "x", (*curve)->field_bytes) : propagate(curve);
  auto y = x ? required_bytes(jwk, "y", (*curve)->field_bytes) : x;
  auto d = y ? optional_bytes(jwk, "d") : propagate(y);
  if (!d) {
    return propagate(d);
  }
  ParamBuilder params;
  params.push_utf8(OSSL_PKEY_PARAM_GROUP_NAME, (*curve)->openssl_group);
  params.push_octets(OSSL_PKEY_PARAM_PUB_KEY, "\x04" + *x + *y); // SEC1 uncompressed point
  if (!*d) {
    return checked_public(params.build("EC", EVP_PKEY_PUBLIC_KEY));
  }
  if ((*d)->size() != (*curve)->field_bytes) {
    return fail(Errc::malformed,
                "JWK member \"d\" must be " + std::to_string((*curve)->field_bytes) + " bytes");
  }
  params.push_bn(OSSL_PKEY_PARAM_PRIV_KEY, **d);
  ossl::cleanse(**d);
  return checked_pair(params.build("EC", EVP_PKEY_KEYPAIR));
}

Result<ossl::PkeyPtr> okp_from_jwk(const json::Json& jwk) {
  auto curve = jwk_curve(jwk, KeyType::okp);
  auto x = curve ? required_bytes(jwk, "x", (*curve)->field_bytes) : propagate(curve);
  auto d = x ? optional_bytes(jwk, "d") : propagate(x);
  if (!d) {
    return propagate(d);
  }
  ParamBuilder params;
  params.push_octets(OSSL_PKEY_PARAM_PUB_KEY, std::move(*x));
  if (!*d) {
    return params.build("ED25519", EVP_PKEY_PUBLIC_KEY);
  }
  if ((*d)->size() != (*curve)->field_bytes) {
    return fail(Errc::malformed,
                "JWK member \"d\" must be " + std::to_string((*curve)->field_bytes) + " bytes");
  }
  params.push_octets(OSSL_PKEY_PARAM_PRIV_KEY, std::move(**d));
  return checked_pair(params.build("ED25519", EVP_PKEY_KEYPAIR));
}

Result<ossl::PkeyPtr> pkey_from_jwk(std::string_view kty, const json::Json& jwk) {
  if (kty == "RSA") {
    return rsa_from_jwk(jwk);
  }
  if (kty == "EC") {
    return ec_from_jwk(jwk);
  }
  if (kty == "OKP") {
    return okp_from_jwk(jwk);
  }
  return fail(Errc::unsupported, "JWK key type \"" + std::string(kty) + "\" is not supported");
}

// The algorithm binding a JWK: the caller's, else the JWK's "alg", which may not contradict it.
Result<std::optional<Alg>> jwk_alg(const json::Json& jwk, std::optional<Alg> requested) {
  auto name = string_member(jwk, "alg");
  if (!name || !*name) {
    return name ? Result<std::optional<Alg>>(requested) : propagate(name);
  }
  const auto named = alg_from_name(**name);
  if (!named) {
    return fail(Errc::unsupported, "JWK algorithm \"" + **name + "\" is not supported");
  }
  if (requested && *requested != *named) {
    return fail(Errc::unsupported,
                "JWK is bound to " + **name + ", not " + std::string(alg_name(*requested)));
  }
  return named;
}
} // namespace

// The RFC 7638 required members: exactly what the thumbprint hashes.
Result<json::Json> public_members(EVP_PKEY* pkey, const KeyFacts& facts) {
  json::Json jwk = {{"kty", key_type_name(facts.type)}};
  if (facts.type == KeyType::rsa) {
    auto n = put(jwk, "n", bn_param(pkey, OSSL_PKEY_PARAM_RSA_N));
    auto e = n ? put(jwk, "e", bn_param(pkey, OSSL_PKEY_PARAM_RSA_E)) : n;
    return e ? Result<json::Json>(std::move(jwk)) : propagate(e);
  }
  const auto& curve = curve_info(facts.curve);
  jwk["crv"] = curve.jwk_name;
  if (facts.type == KeyType::okp) {
    auto x = put(jwk, "x", octet_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, curve.field_bytes));
    return x ? Result<json::Json>(std::move(jwk)) : propagate(x);
  }
  auto x = put(jwk, "x", bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, curve.field_bytes));
  auto y = x ? put(jwk, "y", bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, curve.field_bytes)) : x;
  return y ? Result<json::Json>(std::move(jwk)) : propagate(y);
}

Result<void> add_private_members(json::Json& jwk, EVP_PKEY* pkey, const KeyFacts& facts) {
  const auto& curve = curve_info(facts.curve);
  switch (facts.type) {
  case KeyType::rsa:
    return add_rsa_private_members(jwk, pkey);
  case KeyType::ec:
    return put(jwk, "d", bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, curve.field_bytes));
  case KeyType::okp:
    return put(jwk, "d", octet_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, curve.field_bytes));
  case KeyType::oct:
    break;
  }
  return {};
}

// RFC 7638: SHA-256 of the required members, sorted, without whitespace
// (nlohmann objects are sorted maps and dump() adds no whitespace).
Result<std::string> thumbprint(const json::Json& required_members) {
  auto digest = ossl::sha256(required_members.dump());
  if (!digest) {
    return digest;
  }
  return base64url::encode(*digest);
}

Result<Key> Key::from_jwk(const json::Json& jwk, std::optional<Alg> alg) {
  if (!jwk.is_object()) {
    return fail(Errc::malformed, "JWK must be a JSON object");
  }
  auto kty = string_member(jwk, "kty");
  auto bound = kty ? jwk_alg(jwk, alg) : propagate(kty);
  if (!bound) {
    return propagate(bound);
  }
  if (!*kty) {
    return fail(Errc::malformed, "JWK is missing member \"kty\"");
  }
  if (**kty == "oct") {
    auto secret = required_bytes(jwk, "k");
    return secret ? KeyAccess::from_secret(std::move(*secret), bound->value_or(Alg::HS256))
                  : propagate(secret);
  }
  auto pkey = pkey_from_jwk(**kty, jwk);
  if (!pkey) {
    return propagate(pkey);
  }
  return KeyAccess::from_pkey(std::move(*pkey), *bound);
}

Result<json::Json> Key::to_jwk(IncludePrivate include) const {
  json::Json jwk;
  if (is_symmetric()) {
    if (include == IncludePrivate::no) {
      return fail(Errc::unsupported, "symmetric (HS256) keys are never published");
    }
    jwk = {{"kty", "oct"}, {"k", base64url::encode(m_secret)}};
  } else {
    auto facts = inspect(m_pkey.get());
    auto members = facts ? public_members(m_pkey.get(), *facts) : propagate(facts);
    if (!members) {
      return members;
    }
    jwk = std::move(*members);
    if (include == IncludePrivate::yes && m_has_private) {
      if (auto added = add_private_members(jwk, m_pkey.get(), *facts); !added) {
        return propagate(added);
      }
    }
  }
  jwk["kid"] = m_kid;
  jwk["alg"] = alg_name(m_alg);
  jwk["use"] = "sig";
  return jwk;
}
} // namespace claudegate::keys
