// SPDX-License-Identifier: Apache-2.0
// POST /oauth/token: the OAuth 2.0 client credentials grant (RFC 6749 §4.4).
// The client is an API key (client_id its id, client_secret the whole key);
// the answer is an access token of the key's grant (RFC 9068 claims, with
// client_id), its scope narrowed to what the client asked.
#include "gateway.hpp"
#include "oauth_request.hpp"

#include "claudegate/store/api_key.hpp"
#include "claudegate/store/grant.hpp"

#include <fmt/core.h>

namespace claudegate::proxy {

namespace {

// The token endpoint's answer to a client secret that did not authenticate
// (the reason, never the secret), or to a store that could not answer.
oauth::OAuthError client_rejection(const Error& error) {
  if (error.code == Errc::storage || error.code == Errc::internal) {
    return {500, "server_error", "the gateway could not look up the client; try again"};
  }
  return oauth::invalid_client(fmt::format("client authentication failed: {}", error.message));
}

} // namespace

// The API key `client` authenticates as, checked against its client_id.
oauth::Checked<store::ApiKeyRecord> Gateway::authenticate_client(const oauth::ClientCredentials& client) {
  auto key =
      m_api_keys.authenticate(m_parts.store, m_parts.epochs, client.client_secret, m_parts.clock.now());
  if (!key) {
    return std::unexpected(client_rejection(key.error()));
  }
  if ((*key)->record.id != client.client_id) {
    return std::unexpected(oauth::invalid_client(
        "client authentication failed: client_id is not the id of the key sent as client_secret"));
  }
  return (*key)->record;
}

// The token response for a client credentials request, or the §5.2 error.
oauth::Checked<std::string> Gateway::client_token(const Request& req, CallRecord& call) {
  auto request =
      oauth::parse_token_request(req.header("Content-Type"), req.body, req.header("Authorization"));
  auto key = request ? authenticate_client(request->client) : propagate(request);
  if (!key) {
    if (key.error().error == "invalid_client") { // counted by the key id it named, never logged
      m_guard.record_failure(req, request ? request->client.client_secret : std::string{}, "invalid_client");
    }
    return propagate(key);
  }
  call.subject = key->subject;
  auto grant = grant::from_json(key->grant, fmt::format("API key {}", key->id));
  if (!grant) {
    return std::unexpected(oauth::OAuthError{500, "server_error", grant.error().message});
  }
  auto scope = oauth::narrow_scope(grant->scope, request->scope);
  if (!scope) {
    return propagate(scope);
  }
  grant->scope = *scope;
  grant->extra_claims["client_id"] = key->id; // RFC 9068 §2.2
  const auto ring = m_parts.keys.current();
  auto signer = ring->signer();
  auto access =
      signer ? token::issue(*grant, **signer, m_parts.clock.now(), m_parts.random) : propagate(signer);
  if (!access) {
    call.error = access.error().message;
    return std::unexpected(
        oauth::OAuthError{500, "server_error", "the gateway could not sign the access token"});
  }
  call.jti = access->jti;
  return oauth::token_body(access->token, access->expires_at - access->issued_at, grant->scope);
}

void Gateway::oauth_token(const Request& req, Response& res) {
  CallRecord call = begin(req);
  if (auto locked = m_guard.check(req)) { // before the key store is asked
    reject(res, call, *locked);
    finish(call);
    return;
  }
  auto body = client_token(req, call);
  res.set_header("Cache-Control", "no-store");
  res.set_header("Pragma", "no-cache");
  if (body) {
    call.status = 200;
    res.set_content(*body, "application/json");
  } else {
    const auto& error = body.error();
    if (error.error == "invalid_client") {
      res.set_header("WWW-Authenticate", R"(Basic realm="claudegate", charset="UTF-8")");
    }
    call.status = res.status = error.status;
    call.error = call.error.empty() ? error.error : call.error;
    res.set_content(oauth::error_body(error), "application/json");
  }
  finish(call);
}

} // namespace claudegate::proxy
