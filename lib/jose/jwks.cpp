// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/jwks.hpp"

#include "claudegate/base/fs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace claudegate::jwks {

namespace {

// A JWKS carries several keys, possibly with certificate chains: allow more than a token.
constexpr json::Limits k_document_limits{1024 * 1024, 16};

std::string describe(std::size_t index, const json::Json& jwk) {
  std::string where = "JWKS key #" + std::to_string(index);
  const auto kid = jwk.find("kid");
  if (kid != jwk.end() && kid->is_string()) {
    where += " (kid \"" + kid->get<std::string>() + "\")";
  }
  return where;
}

// Whether the JWK says it is for signatures: "use" absent or "sig", and
// "key_ops", when given, allows "verify".
Result<bool> is_for_signatures(const json::Json& jwk) {
  const auto use = jwk.find("use");
  if (use != jwk.end() && !use->is_string()) {
    return fail(Errc::malformed, "\"use\" must be a string");
  }
  const auto ops = jwk.find("key_ops");
  if (ops != jwk.end() && !ops->is_array()) {
    return fail(Errc::malformed, "\"key_ops\" must be an array");
  }
  const bool use_ok = use == jwk.end() || *use == "sig";
  const bool ops_ok = ops == jwk.end() || std::find(ops->begin(), ops->end(), "verify") != ops->end();
  return use_ok && ops_ok;
}

// The kid a token will name: the JWK's own, else its RFC 7638 thumbprint.
Result<std::string> kid_of(const json::Json& jwk, const keys::Key& key) {
  const auto kid = jwk.find("kid");
  if (kid == jwk.end()) {
    return key.kid();
  }
  if (!kid->is_string() || kid->get_ref<const std::string&>().empty()) {
    return fail(Errc::malformed, "\"kid\" must be a non-empty string");
  }
  return kid->get<std::string>();
}

// One verification key from `jwk`: only public parts of asymmetric keys are kept.
Result<std::optional<std::pair<std::string, keys::Key>>> load_key(const json::Json& jwk,
                                                                  AllowSymmetric symmetric) {
  if (!jwk.is_object()) {
    return fail(Errc::malformed, "must be a JSON object");
  }
  auto wanted = is_for_signatures(jwk);
  if (!wanted || !*wanted || (jwk.value("kty", "") == "oct" && symmetric == AllowSymmetric::no)) {
    return wanted ? Result<std::optional<std::pair<std::string, keys::Key>>>() : propagate(wanted);
  }
  auto key = keys::Key::from_jwk(jwk);
  auto verifier = key ? key->public_only() : key;
  auto kid = verifier ? kid_of(jwk, *verifier) : propagate(verifier);
  if (!kid) {
    return propagate(kid);
  }
  return std::make_pair(std::move(*kid), std::move(*verifier));
}

// The "keys" array of JWKS `text`.
Result<json::Json> key_list(std::string_view text) {
  auto document = json::parse_object(text, k_document_limits);
  if (!document) {
    return fail(Errc::malformed, "JWKS: " + document.error().message);
  }
  const auto keys = document->find("keys");
  if (keys == document->end() || !keys->is_array()) {
    return fail(Errc::malformed, "JWKS: expected an object with a \"keys\" array");
  }
  return std::move(*keys);
}

constexpr std::size_t k_max_file_bytes = 4 * 1024 * 1024;

// `text` as one word for a shell command line: quoted when it needs to be.
std::string shell_word(const std::string& text) {
  const bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0
           || std::string_view("_./-+:,@%=").find(c) != std::string_view::npos;
  });
  if (plain) {
    return text;
  }
  std::string quoted = "'";
  for (const char c : text) {
    quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return quoted + "'";
}

// Who besides the owner may touch a file of mode `mode`, for the message.
std::string_view others_who_can(unsigned mode) {
  if ((mode & 004U) != 0) {
    return "every user can read";
  }
  return (mode & 040U) != 0 ? "its group can read" : "others can access";
}

// Refuse `keys` loaded from `path` when they hold a secret and the file is not private.
Result<void> check_secrets_private(const keyset::KeySet& keys, const std::filesystem::path& path) {
  const auto entries = keys.entries();
  const auto secret = std::find_if(entries.begin(), entries.end(),
                                   [](const auto& entry) { return entry.second->is_symmetric(); });
  if (secret == entries.end()) {
    return {};
  }
  std::error_code ec;
  const auto perms = std::filesystem::status(path, ec).permissions();
  if (ec) {
    return fail(Errc::io,
                fmt::format("cannot read the mode of JWKS file {} ({})", path.string(), ec.message()));
  }
  const auto mode = static_cast<unsigned>(perms) & 0777U;
  if ((mode & 077U) == 0) {
    return {};
  }
  return fail(Errc::config,
              fmt::format("key {} is a secret (oct) in {}, which {} (mode {:04o}); run: chmod 600 {}",
                          secret->first, path.string(), others_who_can(mode), mode,
                          shell_word(path.string())));
}

} // namespace

json::Json to_document(const std::vector<const keys::Key*>& keys) {
  json::Json list = json::Json::array();
  for (const keys::Key* key : keys) {
    if (key == nullptr || key->is_symmetric()) {
      continue; // symmetric keys are secrets: never published
    }
    // to_jwk(no) on an asymmetric key fails only if OpenSSL cannot export the public half.
    if (auto jwk = key->to_jwk(keys::IncludePrivate::no)) {
      list.push_back(std::move(*jwk));
    }
  }
  return json::Json{{"keys", std::move(list)}};
}

Result<keyset::KeySet> parse(std::string_view text, AllowSymmetric symmetric) {
  auto keys = key_list(text);
  if (!keys) {
    return propagate(keys);
  }
  keyset::KeySet set;
  std::string skipped;
  for (std::size_t i = 0; i < keys->size(); ++i) {
    const auto& jwk = (*keys)[i];
    auto loaded = load_key(jwk, symmetric);
    // RFC 7517 §5: ignore keys of a type, curve or algorithm we do not support.
    if (!loaded && loaded.error().code == Errc::unsupported) {
      skipped = describe(i, jwk) + ": " + loaded.error().message;
      continue;
    }
    if (!loaded) {
      return fail(loaded.error().code, describe(i, jwk) + ": " + loaded.error().message);
    }
    if (*loaded && set.find((*loaded)->first) != nullptr) {
      return fail(Errc::malformed,
                  describe(i, jwk) + ": duplicate kid, so the key to use would be ambiguous");
    }
    if (*loaded) {
      set.add(std::move((*loaded)->first), std::move((*loaded)->second));
    }
  }
  if (set.empty() && !skipped.empty()) {
    return fail(Errc::unsupported, "JWKS has no usable signature key; " + skipped);
  }
  return set;
}

Result<keyset::KeySet> load_file(const std::filesystem::path& path) {
  auto text = fs::read(path, k_max_file_bytes);
  if (!text) {
    return propagate(text);
  }
  auto keys = parse(*text, AllowSymmetric::yes);
  if (!keys) {
    return keys;
  }
  // A secret others can read is no longer one: say so instead of dropping it.
  if (auto private_enough = check_secrets_private(*keys, path); !private_enough) {
    return propagate(private_enough);
  }
  return keys;
}

} // namespace claudegate::jwks
