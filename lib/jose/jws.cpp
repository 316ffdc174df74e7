// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/jws.hpp"

#include "claudegate/jose/base64url.hpp"
#include "claudegate/jose/signature.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <utility>

namespace claudegate::jws {

namespace {

// Header parameters we refuse outright, with the reason a user sees.
constexpr std::array<std::pair<std::string_view, std::string_view>, 8> k_refused_params = {{
    {"crit", "critical extensions are not supported"},
    {"b64", "unencoded payloads (RFC 7797) are not supported"},
    {"jku", "keys are never fetched from a URL named by the token"},
    {"x5u", "keys are never fetched from a URL named by the token"},
    {"jwk", "keys are never taken from the token itself"},
    {"x5c", "keys are never taken from the token itself"},
    {"zip", "compressed payloads are not supported"},
    {"cty", "nested or typed content is not supported"},
}};

// alg/typ/kid, plus the informational certificate thumbprints IdPs send.
constexpr std::array<std::string_view, 5> k_allowed_params = {"alg", "typ", "kid", "x5t", "x5t#S256"};

using json::quote;

struct Segments {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signing_input;
};

Result<Segments> split(std::string_view token) {
  const auto dots = std::count(token.begin(), token.end(), '.');
  if (dots != 2) {
    const auto noun = dots == 0 ? " segment" : " segments";
    return fail(Errc::malformed, "token has " + std::to_string(dots + 1) + noun
                                     + "; a compact JWS has exactly 3 (header.payload.signature)");
  }
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  return Segments{token.substr(0, first), token.substr(first + 1, second - first - 1),
                  token.substr(second + 1), token.substr(0, second)};
}

// Base64url-decode then strictly parse `segment` as a JSON object.
Result<json::Json> decode_object(std::string_view what, std::string_view segment) {
  if (segment.empty()) {
    return fail(Errc::malformed, "token has an empty " + std::string(what) + " segment");
  }
  auto bytes = base64url::decode(segment);
  if (!bytes) {
    return fail(Errc::malformed, std::string(what) + ": " + bytes.error().message);
  }
  auto object = json::parse_object(*bytes);
  if (!object) {
    return fail(Errc::malformed, std::string(what) + ": " + object.error().message);
  }
  return object;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string supported_alg_names() {
  std::string out;
  for (const auto alg : keys::all_algs()) {
    out += (out.empty() ? "" : ", ") + std::string(alg_name(alg));
  }
  return out;
}

Result<keys::Alg> header_alg(const json::Json& header) {
  const auto it = header.find("alg");
  if (it == header.end()) {
    return fail(Errc::malformed, "header has no \"alg\"");
  }
  if (!it->is_string()) {
    return fail(Errc::malformed, "header \"alg\" must be a string, received " + quote(*it));
  }
  const auto& name = it->get_ref<const std::string&>();
  if (const auto alg = keys::alg_from_name(name)) {
    return *alg;
  }
  if (equals_ignoring_case(name, "none")) {
    return fail(Errc::unsupported, "alg " + quote(name) + " is refused: unsigned tokens are never accepted");
  }
  return fail(Errc::unsupported, "unsupported alg " + quote(name)
                                     + " (supported, case-sensitive: " + supported_alg_names() + ")");
}

Result<void> check_param(const std::string& name, const json::Json& value) {
  const auto refused = std::find_if(k_refused_params.begin(), k_refused_params.end(),
                                    [&](const auto& entry) { return entry.first == name; });
  if (refused != k_refused_params.end()) {
    return fail(Errc::unsupported,
                "header parameter " + quote(name) + " is refused: " + std::string(refused->second));
  }
  if (std::find(k_allowed_params.begin(), k_allowed_params.end(), name) == k_allowed_params.end()) {
    return fail(Errc::unsupported, "unknown header parameter " + quote(name)
                                       + " (only alg, typ, kid, x5t and x5t#S256 are accepted)");
  }
  if (name != "alg" && !value.is_string()) {
    return fail(Errc::malformed, "header " + quote(name) + " must be a string, received " + quote(value));
  }
  return {};
}

// The header's alg, once every parameter is known to be acceptable.
Result<keys::Alg> check_header(const json::Json& header) {
  // alg first, so "none" is reported as such whatever else the header holds.
  auto alg = header_alg(header);
  if (!alg) {
    return alg;
  }
  for (const auto& [name, value] : header.items()) {
    if (auto r = check_param(name, value); !r) {
      return propagate(r);
    }
  }
  return alg;
}

std::string string_member(const json::Json& object, const char* name) {
  const auto it = object.find(name);
  return it == object.end() ? std::string() : it->get<std::string>();
}

Result<std::string> decode_signature(std::string_view segment) {
  if (segment.empty()) {
    return fail(Errc::malformed, "token has an empty signature segment (unsigned tokens are never accepted)");
  }
  auto bytes = base64url::decode(segment);
  if (!bytes) {
    return fail(Errc::malformed, "signature: " + bytes.error().message);
  }
  return bytes;
}

// Compact text of `value` (object only); strict so invalid UTF-8 fails instead of being replaced.
Result<std::string> serialize(std::string_view what, const json::Json& value) {
  if (!value.is_object()) {
    return fail(Errc::malformed, std::string(what) + " must be a JSON object, got " + value.type_name());
  }
  try {
    return value.dump();
  } catch (const json::Json::exception& e) {
    return fail(Errc::malformed, std::string(what) + " cannot be serialized: " + e.what());
  }
}

} // namespace

Result<DecodedToken> decode(std::string_view token) {
  // Size first: nothing in an oversized token is worth decoding.
  if (token.size() > k_max_token_bytes) {
    return fail(Errc::malformed, "token is " + std::to_string(token.size()) + " bytes; the limit is "
                                     + std::to_string(k_max_token_bytes));
  }
  const auto segments = split(token);
  if (!segments) {
    return propagate(segments);
  }
  auto header = decode_object("header", segments->header);
  if (!header) {
    return propagate(header);
  }
  // The header is judged before the payload, so a refused alg is reported as such.
  const auto alg = check_header(*header);
  if (!alg) {
    return propagate(alg);
  }
  auto payload = decode_object("payload", segments->payload);
  if (!payload) {
    return propagate(payload);
  }
  auto signature = decode_signature(segments->signature);
  if (!signature) {
    return propagate(signature);
  }
  DecodedToken out;
  out.kid = string_member(*header, "kid");
  out.typ = string_member(*header, "typ");
  out.alg = *alg;
  out.header = std::move(*header);
  out.payload = std::move(*payload);
  out.signing_input = std::string(segments->signing_input);
  out.signature = std::move(*signature);
  return out;
}

Result<void> verify_signature(const DecodedToken& decoded, const keys::Key& key) {
  // The algorithm comes from the key, never from the token.
  if (decoded.alg != key.alg()) {
    return fail(Errc::unsupported, "token alg " + std::string(alg_name(decoded.alg))
                                       + " does not match the key's alg " + std::string(alg_name(key.alg())));
  }
  return signature::verify(key.alg(), key, decoded.signing_input, decoded.signature);
}

Result<std::string> sign(const json::Json& header, const json::Json& payload, const keys::Key& key) {
  const auto header_text = serialize("header", header);
  if (!header_text) {
    return header_text;
  }
  const auto payload_text = serialize("payload", payload);
  if (!payload_text) {
    return payload_text;
  }
  return sign_serialized(*header_text, *payload_text, key);
}

Result<std::string> sign_serialized(std::string_view header_json, std::string_view payload,
                                    const keys::Key& key) {
  const auto header = json::parse_object(header_json);
  if (!header) {
    return fail(Errc::malformed, "header: " + header.error().message);
  }
  // Never mint what decode would refuse, nor sign under an alg the key is not bound to.
  const auto alg = check_header(*header);
  if (!alg) {
    return propagate(alg);
  }
  if (*alg != key.alg()) {
    return fail(Errc::unsupported, "header alg " + std::string(alg_name(*alg))
                                       + " does not match the key's alg " + std::string(alg_name(key.alg())));
  }
  auto out = base64url::encode(header_json) + "." + base64url::encode(payload);
  const auto sig = signature::sign(key.alg(), key, out);
  if (!sig) {
    return propagate(sig);
  }
  return out + "." + base64url::encode(*sig);
}

} // namespace claudegate::jws
