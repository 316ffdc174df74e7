// SPDX-License-Identifier: Apache-2.0
// The gateway's routes besides POST /v1/messages: count_tokens, models,
// refresh/revoke, JWKS, health, metrics and the envelope for the server's own errors.
#include "gateway.hpp"

#include "claudegate/base/duration.hpp"
#include "claudegate/jose/jwks.hpp"
#include "claudegate/proxy/anthropic_error.hpp"
#include "claudegate/store/refresh.hpp"

#include <fmt/core.h>

namespace claudegate::proxy {

namespace {

// `body` with the models `grant` may not use taken out of its "data" list.
std::string filter_models(const std::string& body, const Grant& grant) {
  json::Json doc = json::Json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("data") || !doc["data"].is_array()) {
    return body;
  }
  json::Json kept = json::Json::array();
  for (const auto& model : doc["data"]) {
    if (model.is_object() && model.contains("id") && model["id"].is_string()
        && model_allowed(grant, model["id"].get<std::string>())) {
      kept.push_back(model);
    }
  }
  doc["first_id"] = kept.empty() ? json::Json(nullptr) : kept.front()["id"];
  doc["last_id"] = kept.empty() ? json::Json(nullptr) : kept.back()["id"];
  doc["data"] = std::move(kept);
  return doc.dump();
}

// The members `issue --json` prints for a rotated pair.
json::Json pair_json(const refresh::TokenPair& pair, UnixSeconds now) {
  const auto& access = pair.access;
  return {{"access_token", access.token},
          {"token_type", "Bearer"},
          {"expires_in", access.expires_at - access.issued_at},
          {"jti", access.jti},
          {"kid", access.kid},
          {"refresh_token", pair.refresh_token},
          {"refresh_expires_in", pair.refresh_expires_at - now},
          {"family_id", pair.family_id}};
}

// A string member `name` of JSON object `body`, or the form parameter `name`.
std::string body_field(const Request& req, const char* name) {
  if (req.param_count(name) > 0) {
    return req.param(name);
  }
  json::Json doc = json::Json::parse(req.body, nullptr, false);
  if (doc.is_object() && doc.contains(name) && doc[name].is_string()) {
    return doc[name].get<std::string>();
  }
  return {};
}

Rejection refresh_rejection(const Error& error) {
  if (error.code == Errc::storage || error.code == Errc::internal || error.code == Errc::config) {
    return {500, "api_error", "the gateway could not rotate the refresh token; try again"};
  }
  return {401, "authentication_error", error.message};
}

} // namespace

// Free of token quota, not of rate limits: it takes a slot like every authenticated route.
Outcome Gateway::count_tokens(const Request& req) {
  CallRecord call = begin(req);
  auto authorized = authorize_message(req, call);
  auto slot = authorized ? take_slot(authorized->caller.grant) : propagate(authorized);
  if (!slot) {
    return rejected(call, slot.error());
  }
  std::string subject = authorized->caller.grant.subject;
  return {{}, Forward{outbound_for(req, false), std::move(call), std::nullopt, std::move(subject), {}}};
}

// The upstream's models, without those `caller`'s grant does not allow.
Outcome Gateway::forward_models(const Request& req, CallRecord& call, const Caller& caller) {
  auto rewrite = [grant = caller.grant](const std::string& body) { return filter_models(body, grant); };
  return {{},
          Forward{outbound_for(req, false), std::move(call), std::nullopt, caller.grant.subject,
                  std::move(rewrite)}};
}

Outcome Gateway::list_models(const Request& req) {
  CallRecord call = begin(req);
  auto caller = authenticate(req);
  auto slot = caller ? take_slot(caller->grant) : propagate(caller);
  if (!slot) {
    return rejected(call, slot.error());
  }
  call.subject = caller->grant.subject;
  return forward_models(req, call, *caller);
}

// A model the grant does not allow is a 404, as the upstream says of one it does not know.
Outcome Gateway::get_model(const Request& req) {
  CallRecord call = begin(req);
  auto caller = authenticate(req);
  const std::string id = req.path_params.empty() ? std::string{} : req.path_params.front();
  if (!caller) {
    return rejected(call, caller.error());
  }
  if (auto slot = take_slot(caller->grant); !slot) {
    return rejected(call, slot.error());
  }
  call.subject = caller->grant.subject;
  if (!model_allowed(caller->grant, id)) { // counted against rpm, yet holds no slot
    m_limiter.release(call.subject);
    return rejected(call, Rejection{404, "not_found_error", fmt::format("model: {}", id)});
  }
  call.model = id;
  return {{}, Forward{outbound_for(req, false), std::move(call), std::nullopt, caller->grant.subject, {}}};
}

void Gateway::refresh(const Request& req, Response& res) {
  CallRecord call = begin(req);
  const std::string presented = body_field(req, "refresh_token");
  const auto ring = m_parts.keys.current();
  auto signer = ring->signer();
  const UnixSeconds now = m_parts.clock.now();
  if (auto locked = m_guard.check(req)) {
    reject(res, call, *locked);
  } else if (presented.empty()) {
    reject(res, call, Rejection{400, "invalid_request_error", "refresh_token: Field required"});
  } else if (!signer) {
    reject(res, call, Rejection{500, "api_error", "the gateway has no signing key; run: claudegate keygen"});
  } else if (auto pair = refresh::rotate(m_parts.store, presented, **signer,
                                         {m_parts.config.refresh_ttl, m_parts.config.family_ttl}, now,
                                         m_parts.random);
             !pair) {
    const auto rejection = refresh_rejection(pair.error());
    if (pair.error().code == Errc::refresh_reuse) {
      revocation_written(); // the reuse revoked the family
    }
    auth_failed(req, {}, errc_code(pair.error().code), rejection);
    reject(res, call, rejection);
  } else {
    call.status = 200;
    call.subject = pair->access.claims.value("sub", "");
    call.jti = pair->access.jti;
    res.set_header("Cache-Control", "no-store");
    res.set_content(pair_json(*pair, now).dump(), "application/json");
  }
  finish(call);
}

// This process wrote a revocation: the caches stop trusting what it undoes
// from the next request on, without waiting for the watch to notice. Should
// the read fail, the watch still catches up within its poll.
void Gateway::revocation_written() {
  (void)m_parts.epochs.refresh();
}

// Revoke a token its holder presents: a refresh token's family, or an
// access token's jti (an IdP token's in the IdP's namespace). An invalid or
// expired token needs no revoking (RFC 7009 §2.2); an IdP token without a
// jti cannot be revoked alone (a 400 that says so).
Checked<void> Gateway::revoke_presented(const std::string& presented, CallRecord& call) {
  const UnixSeconds now = m_parts.clock.now();
  const std::string reason = "revoked by its holder (POST /auth/revoke)";
  const auto stored = [](Result<void> done) -> Checked<void> {
    if (done) {
      return {};
    }
    Rejection failed{500, "api_error", "the gateway could not record the revocation; try again"};
    failed.cause = done.error().message;
    return std::unexpected(failed);
  };
  if (presented.starts_with(refresh::k_prefix)) {
    auto hash = refresh::check_format(presented) ? refresh::hash(presented) : std::unexpected(Error{});
    auto family = hash ? m_parts.store.family_of(*hash) : Result<std::optional<std::string>>(std::nullopt);
    if (!family || !*family) {
      return stored(family ? Result<void>{} : propagate(family));
    }
    return stored(m_parts.store.revoke_family(**family, reason, now));
  }
  auto verified = verify_presented(presented);
  if (!verified) {
    return {};
  }
  const auto& claims = verified->token.claims;
  const auto* idp = verified->idp;
  const std::string space = idp != nullptr ? idp->issuer + "|" : std::string{};
  call.subject = space + claims.value("sub", "");
  const std::string jti = claims.value("jti", "");
  if (jti.empty()) {
    return std::unexpected(
        Rejection{400, "invalid_request_error",
                  fmt::format("this token carries no jti, so it cannot be revoked alone; "
                              "the operator can revoke its subject: claudegate revoke --sub '{}'",
                              call.subject)});
  }
  call.jti = space + jti;
  const auto exp = static_cast<UnixSeconds>(claims.value("exp", 0.0));
  return stored(m_parts.store.revoke_jti(call.jti, exp, call.subject, reason, now));
}

void Gateway::revoke(const Request& req, Response& res) {
  CallRecord call = begin(req);
  const std::string presented = body_field(req, "token");
  if (presented.empty()) {
    reject(res, call, Rejection{400, "invalid_request_error", "token: Field required"});
  } else if (auto done = revoke_presented(presented, call); !done) {
    reject(res, call, done.error());
  } else {
    revocation_written();
    call.status = 200;
    res.set_content("{}", "application/json");
  }
  finish(call);
}

void Gateway::jwks(const Request&, Response& res) {
  const auto ring = m_parts.keys.current();
  res.set_header("Cache-Control", "public, max-age=300");
  res.set_content(jwks::to_document(ring->public_keys()).dump(), "application/json");
}

void Gateway::healthz(const Request&, Response& res) {
  res.set_content(R"({"status":"ok"})", "application/json");
}

// Open on loopback; with --allow-remote, for the roles the access policy names.
void Gateway::metrics(const Request& req, Response& res) {
  const auto render = [this](const auto&, Response& out, auto&...) {
    out.set_content(m_parts.metrics.render() + m_guard.render_metrics(), "text/plain; version=0.0.4");
  };
  if (m_access.guards(req.path)) {
    serve_guarded(req, res, render);
  } else {
    render(req, res);
  }
}

Response Gateway::error_reply(const Request& req, int status) {
  CallRecord call = begin(req);
  std::string message = fmt::format("{} {}: HTTP {}", req.method, req.path, status);
  if (status == 404) {
    message = fmt::format("Not found: {} {}", req.method, req.path);
  } else if (status == 500) {
    message = "the gateway failed to answer; try again";
  }
  return rejected(call, Rejection{status, std::string(error_type_for(status)), message}).response;
}

Response Gateway::refuse(const Request& req, const Rejection& rejection) {
  CallRecord call = begin(req);
  return rejected(call, rejection).response;
}

} // namespace claudegate::proxy
