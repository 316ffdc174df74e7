// SPDX-License-Identifier: Apache-2.0
#include "oauth_request.hpp"

#include "claudegate/base/json.hpp"
#include "claudegate/base/text.hpp"
#include "claudegate/jose/base64url.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace claudegate::proxy::oauth {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  const char lower = static_cast<char>(c | 0x20);
  return lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : -1;
}

// `text` form-decoded ("+" → space, %XX → byte); nullopt on a bad escape.
std::optional<std::string> form_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] != '%') {
      out.push_back(text[i]);
    } else {
      const int high = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
      const int low = high >= 0 ? hex_digit(text[i + 2]) : -1;
      if (low < 0) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    }
  }
  return out;
}

// Standard base64 (RFC 4648 §4, padded) as the base64url decoder reads it.
std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string_view body = text;
  for (int pad = 0; pad < 2 && body.ends_with('='); ++pad) {
    body.remove_suffix(1);
  }
  std::string url(body);
  for (char& c : url) {
    if (c == '-' || c == '_') {
      return std::nullopt; // not of the standard alphabet
    }
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  }
  auto decoded = base64url::decode(url);
  return decoded ? std::optional<std::string>(std::move(*decoded)) : std::nullopt;
}

// The id and secret of an "Authorization: Basic …" header.
Checked<ClientCredentials> basic_credentials(std::string_view authorization) {
  const std::string_view value = text::trim(authorization);
  const auto space = value.find(' ');
  if (space == std::string_view::npos || text::lower(value.substr(0, space)) != "basic") {
    return std::unexpected(invalid_client(
        "the Authorization header is not HTTP Basic; send \"Basic base64(client_id:client_secret)\" "
        "or the client_id and client_secret form parameters"));
  }
  const auto decoded = base64_decode(text::trim(value.substr(space + 1)));
  const auto colon = decoded ? decoded->find(':') : std::string::npos;
  if (colon == std::string::npos) {
    return std::unexpected(
        invalid_client("the Basic credentials are not base64 of \"client_id:client_secret\""));
  }
  auto id = form_decode(std::string_view(*decoded).substr(0, colon));
  auto secret = form_decode(std::string_view(*decoded).substr(colon + 1));
  if (!id || !secret) {
    return std::unexpected(invalid_client("the Basic credentials hold a malformed %-escape"));
  }
  return ClientCredentials{std::move(*id), std::move(*secret), true};
}

std::string parameter(const Form& form, std::string_view name) {
  const auto found = form.find(name);
  return found == form.end() ? std::string{} : found->second;
}

// Exactly one way of authenticating the client (RFC 6749 §2.3).
Checked<ClientCredentials> client_of(const Form& form, std::string_view authorization) {
  const bool in_form = form.contains("client_id") || form.contains("client_secret");
  if (!authorization.empty() && in_form) {
    return std::unexpected(invalid_request(
        "the client authenticated twice (Authorization header and form parameters); use one of them"));
  }
  if (!authorization.empty()) {
    return basic_credentials(authorization);
  }
  ClientCredentials client{parameter(form, "client_id"), parameter(form, "client_secret"), false};
  if (client.client_id.empty() || client.client_secret.empty()) {
    return std::unexpected(invalid_client(
        "no client credentials; send HTTP Basic or the client_id and client_secret form parameters "
        "(client_id is the API key's id, client_secret the whole cgk_ key)"));
  }
  return client;
}

} // namespace

OAuthError invalid_request(std::string description) {
  return {400, "invalid_request", std::move(description)};
}

OAuthError invalid_client(std::string description) {
  return {401, "invalid_client", std::move(description)};
}

Checked<Form> parse_form(std::string_view body) {
  Form form;
  for (const std::string_view pair : text::split(body, '&')) {
    if (pair.empty()) {
      continue;
    }
    const auto equals = pair.find('=');
    auto name = form_decode(pair.substr(0, equals));
    auto value = equals == std::string_view::npos ? std::nullopt : form_decode(pair.substr(equals + 1));
    if (!name || !value) {
      return std::unexpected(
          invalid_request(fmt::format("the form parameter \"{}\" is malformed (name=value, %-escapes as %XX)",
                                      pair.substr(0, std::min<std::size_t>(equals, 40)))));
    }
    if (!form.emplace(std::move(*name), std::move(*value)).second) {
      return std::unexpected(
          invalid_request(fmt::format("the parameter {} is given more than once", pair.substr(0, equals))));
    }
  }
  return form;
}

Checked<TokenRequest> parse_token_request(std::string_view content_type, std::string_view body,
                                          std::string_view authorization) {
  const auto media = text::lower(text::trim(text::split(content_type, ';').front()));
  if (media != "application/x-www-form-urlencoded") {
    return std::unexpected(
        invalid_request("the token request must be application/x-www-form-urlencoded (RFC 6749 §4.4.2)"));
  }
  auto form = parse_form(body);
  if (!form) {
    return propagate(form);
  }
  const std::string grant_type = parameter(*form, "grant_type");
  if (grant_type.empty()) {
    return std::unexpected(invalid_request("grant_type is missing; send grant_type=client_credentials"));
  }
  if (grant_type != k_client_credentials) {
    return std::unexpected(OAuthError{400, "unsupported_grant_type",
                                      fmt::format("grant_type {} is not supported; this endpoint "
                                                  "issues tokens for grant_type=client_credentials",
                                                  grant_type)});
  }
  auto client = client_of(*form, authorization);
  if (!client) {
    return propagate(client);
  }
  TokenRequest request{std::move(*client), std::nullopt};
  if (const auto scope = form->find("scope"); scope != form->end()) {
    request.scope = scope->second;
  }
  return request;
}

Checked<std::string> narrow_scope(std::string_view granted, const std::optional<std::string>& requested) {
  if (!requested) {
    return std::string(granted);
  }
  const auto held = text::words(granted);
  const auto asked = text::words(*requested);
  if (asked.empty()) {
    return std::unexpected(
        OAuthError{400, "invalid_scope", "scope is empty; omit it to get the key's scopes"});
  }
  std::vector<std::string_view> kept;
  for (const std::string_view scope : asked) {
    if (std::ranges::find(held, scope) == held.end()) {
      return std::unexpected(
          OAuthError{400, "invalid_scope",
                     fmt::format("scope {} is not granted to this client (it holds: {})", scope, granted)});
    }
    if (std::ranges::find(kept, scope) == kept.end()) {
      kept.push_back(scope);
    }
  }
  return fmt::format("{}", fmt::join(kept, " "));
}

std::string error_body(const OAuthError& error) {
  return json::Json{{"error", error.error}, {"error_description", error.description}}.dump(
      -1, ' ', false, json::Json::error_handler_t::replace);
}

std::string token_body(std::string_view access_token, std::int64_t expires_in, std::string_view scope) {
  return json::Json{
      {"access_token", access_token}, {"token_type", "Bearer"}, {"expires_in", expires_in}, {"scope", scope}}
      .dump();
}

} // namespace claudegate::proxy::oauth
