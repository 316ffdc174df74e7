// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>

// The wire side of the OAuth 2.0 token endpoint (RFC 6749 §4.4, client
// credentials): reading the form and the client's credentials, narrowing the
// scope, and the JSON of its answers. Pure functions; the gateway
// authenticates the client and mints the token (gateway_oauth.cpp).
namespace claudegate::proxy::oauth {

inline constexpr std::string_view k_client_credentials = "client_credentials";

// An RFC 6749 §5.2 error: HTTP status, error code, description. A failed
// client authentication (invalid_client) also carries WWW-Authenticate.
struct OAuthError {
  int status = 400;
  std::string error;
  std::string description;
};

template <typename T> using Checked = std::expected<T, OAuthError>;

OAuthError invalid_request(std::string description);
OAuthError invalid_client(std::string description);

// The parameters of an application/x-www-form-urlencoded body ("+" is a
// space, %XX a byte). Fails with invalid_request on a malformed escape, a
// parameter without "=", or a parameter given twice (RFC 6749 §3.2).
using Form = std::map<std::string, std::string, std::less<>>;
Checked<Form> parse_form(std::string_view body);

struct ClientCredentials {
  std::string client_id;
  std::string client_secret;
  bool basic = false; // sent as HTTP Basic (else as form fields)
};

struct TokenRequest {
  ClientCredentials client;
  std::optional<std::string> scope; // as asked; nullopt = the whole grant
};

// The token request of a POST with content type `content_type`, body `body`
// and Authorization header `authorization` (empty when absent): the form,
// grant_type client_credentials, and the client authenticated by exactly one
// of HTTP Basic (id and secret form-encoded, RFC 6749 §2.3.1) or the
// client_id/client_secret parameters. Fails with invalid_request (not a
// form, a parameter missing or repeated, two authentication methods),
// unsupported_grant_type, or invalid_client (no credentials, a malformed
// Basic header).
Checked<TokenRequest> parse_token_request(std::string_view content_type, std::string_view body,
                                          std::string_view authorization);

// The scope to grant when the client holds `granted` and asked for
// `requested` (space-separated): `granted` when nothing was asked, else the
// asked scopes in the order asked. Fails with invalid_scope naming a scope
// the client does not hold (a request may narrow, never widen) or an empty
// request.
Checked<std::string> narrow_scope(std::string_view granted, const std::optional<std::string>& requested);

// {"error": …, "error_description": …}
std::string error_body(const OAuthError& error);

// {"access_token": …, "token_type": "Bearer", "expires_in": …, "scope": …}
std::string token_body(std::string_view access_token, std::int64_t expires_in, std::string_view scope);

} // namespace claudegate::proxy::oauth
