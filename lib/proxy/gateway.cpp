// SPDX-License-Identifier: Apache-2.0
#include "gateway.hpp"

#include "quota_policy.hpp"

#include "claudegate/base/duration.hpp"
#include "claudegate/base/json.hpp"
#include "claudegate/jose/jws.hpp"
#include "claudegate/proxy/anthropic_error.hpp"
#include "claudegate/store/api_key.hpp"
#include "claudegate/store/revocation.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <limits>

namespace claudegate::proxy {

namespace {

constexpr std::string_view k_messages_scope = "claude:messages";

std::int64_t elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since)
      .count();
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string string_claim(const json::Json& claims, const char* name) {
  const auto it = claims.find(name);
  return it != claims.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

Rejection auth_rejection(const Error& error) {
  // io: the IdP's keys could not be fetched (--jwks), not the caller's fault.
  // storage: the store (revocations) does not answer: 503, as the store is
  // down, never the token accepted unchecked.
  if (error.code == Errc::storage) {
    Rejection failed{503, "api_error",
                     "the gateway cannot check revocations now (its store does not answer); "
                     "try again shortly"};
    failed.cause = error.message;
    return failed;
  }
  if (error.code == Errc::internal || error.code == Errc::io) {
    Rejection failed{500, "api_error", "the gateway could not check the token; try again"};
    failed.cause = error.message;
    return failed;
  }
  return {401, "authentication_error", error.message};
}

} // namespace

Gateway::Gateway(GatewayParts parts, access::AccessPolicy access)
    : m_parts(parts), m_access(std::move(access)),
      m_guard(lockout_policy(parts.config.serve.lockout), parts.clock, parts.metrics, parts.log) {
}

claims::VerifyPolicy Gateway::policy() const {
  claims::VerifyPolicy policy;
  policy.issuer = m_parts.config.issuer;
  policy.audiences = {m_parts.config.audience};
  policy.leeway = m_parts.config.leeway;
  policy.max_lifetime = m_parts.config.max_access_ttl;
  return policy;
}

CallRecord Gateway::begin(const Request& req) const {
  CallRecord call;
  call.request_id = new_request_id(m_parts.random);
  call.route = req.method + " " + req.path;
  return call;
}

Checked<Caller> Gateway::authenticate(const Request& req) {
  if (auto locked = m_guard.check(req)) {
    return std::unexpected(std::move(*locked));
  }
  const auto presented = presented_token(req);
  if (!presented) {
    m_parts.metrics.count_auth_failure(presented.error().reason);
    return std::unexpected(Rejection{401, "authentication_error", presented.error().message});
  }
  auto verified = verify_presented(*presented);
  if (!verified) {
    auto rejection = auth_rejection(verified.error());
    auth_failed(req, *presented, errc_code(verified.error().code), rejection);
    return std::unexpected(std::move(rejection));
  }
  const auto* idp = verified->idp;
  const auto& claims = verified->token.claims;
  auto grant = idp == nullptr ? grant_for(claims, m_parts.config)
                              : external_grant_for(claims, m_parts.config, idp->default_plan, idp->issuer);
  if (!grant) {
    m_parts.metrics.count_auth_failure("no_plan");
    return std::unexpected(Rejection{403, "permission_error", grant.error().message});
  }
  std::string jti = string_claim(claims, "jti");
  if (idp != nullptr && !jti.empty()) {
    jti = idp->issuer + "|" + jti; // as the revocation check names it
  }
  return Caller{std::move(verified->token), std::move(*grant), std::move(jti), idp};
}

void Gateway::auth_failed(const Request& req, std::string_view presented, std::string_view reason,
                          const Rejection& rejection) {
  if (rejection.status == 401) {
    m_guard.record_failure(req, presented, reason);
  } else {
    m_parts.metrics.count_auth_failure(reason); // the gateway's own failure, not a guess
  }
}

// An API key (cgk_…) stands for a token of its grant; otherwise the local
// keyring first, and a kid it does not know may be the external IdP's.
Result<PresentedToken> Gateway::verify_presented(std::string_view presented) {
  const UnixSeconds now = m_parts.clock.now();
  if (api_key::looks_like_key(presented)) {
    auto key = m_api_keys.authenticate(m_parts.store, m_parts.epochs, presented, now);
    return key ? Result<PresentedToken>(PresentedToken{(*key)->token}) : propagate(key);
  }
  const auto ring = m_parts.keys.current();
  auto verified =
      m_verified.verify(presented, ring->verification_keys(), policy(), now, &m_parts.store, m_parts.epochs);
  if (verified) {
    return PresentedToken{std::move(*verified)};
  }
  if (verified.error().code != Errc::unknown_key || m_parts.idp == nullptr) {
    return propagate(verified);
  }
  return verify_external(presented, now);
}

// An IdP token: its key set (refetched for a new kid, rate-limited), the
// IdP's issuer, and revocations in the IdP's namespace.
Result<PresentedToken> Gateway::verify_external(std::string_view presented, UnixSeconds now) {
  const auto decoded = jws::decode(presented);
  auto keys = m_parts.idp->keys.keys_for(decoded ? decoded->kid : std::string{});
  if (!keys) {
    return propagate(keys);
  }
  auto external = policy();
  external.issuer = m_parts.idp->issuer;
  external.revocation_namespace = m_parts.idp->issuer;
  auto verified = m_verified.verify(presented, **keys, external, now, &m_parts.store, m_parts.epochs);
  if (!verified) {
    return propagate(verified);
  }
  return PresentedToken{std::move(*verified), m_parts.idp};
}

Checked<MessageRequest> Gateway::check_message(const Request& req, const Caller& caller) const {
  if (!has_scope(caller.grant, k_messages_scope)) {
    return std::unexpected(
        Rejection{403, "permission_error", fmt::format("the token lacks the scope {}", k_messages_scope)});
  }
  auto message = inspect_message_request(req.body);
  if (!message) {
    return std::unexpected(Rejection{400, "invalid_request_error", message.error().message});
  }
  if (!message->max_tokens && req.path == "/v1/messages") { // unbounded output could not be reserved
    return std::unexpected(Rejection{400, "invalid_request_error", "max_tokens: Field required"});
  }
  const std::int64_t ceiling = m_parts.config.serve.max_output_tokens;
  if (message->max_tokens && *message->max_tokens > ceiling) {
    return std::unexpected(
        Rejection{400, "invalid_request_error",
                  fmt::format("max_tokens: {} is above the most any model can produce ({}, "
                              "serve.max_output_tokens); lower it",
                              *message->max_tokens, ceiling)});
  }
  if (!model_allowed(caller.grant, message->model)) {
    return std::unexpected(
        Rejection{403, "permission_error",
                  fmt::format("model {} is not allowed on plan {}; it allows {}", json::quote(message->model),
                              caller.grant.plan, allowed_models_text(caller.grant))});
  }
  const auto cap = caller.grant.max_tokens;
  if (message->max_tokens && cap && *message->max_tokens > *cap
      && caller.grant.over_cap == config::OverCap::reject) {
    return std::unexpected(Rejection{400, "invalid_request_error",
                                     fmt::format("max_tokens: {} is above the limit of plan {} ({})",
                                                 *message->max_tokens, caller.grant.plan, *cap)});
  }
  return std::move(*message);
}

// A concurrency slot and a request of the minute for `grant`'s subject;
// every authenticated route takes one (released with release()).
Checked<void> Gateway::take_slot(const Grant& grant) {
  const Admission admission = m_limiter.admit(grant.subject, grant.rpm, grant.max_concurrent, unix_ms());
  if (admission.admitted) {
    return {};
  }
  m_parts.metrics.count_quota_rejection(admission.reason);
  return std::unexpected(Rejection{429, "rate_limit_error",
                                   fmt::format("{} limit of plan {} reached", admission.reason, grant.plan),
                                   static_cast<std::int64_t>(admission.retry_after), true});
}

Checked<Ticket> Gateway::admit(const Caller& caller, const MessageRequest& message) {
  const auto& grant = caller.grant;
  if (auto slot = take_slot(grant); !slot) {
    return propagate(slot);
  }
  const auto request = reservation_request(grant, message, m_parts.clock.now(), m_owner);
  auto reservation = reserve(request);
  auto ticket = reservation ? ticket_for(grant, message, request, *reservation) : std::unexpected([&] {
    // The store does not answer (or cannot write): 503, the request is not forwarded.
    const int status = reservation.error().code == Errc::storage ? 503 : 500;
    Rejection failed{status, "api_error", "the gateway could not reserve quota; try again"};
    failed.cause = reservation.error().message;
    return failed;
  }());
  if (!ticket) {
    m_limiter.release(grant.subject);
  }
  return ticket;
}

// Reserve for `request` from the quota book (a lease in memory; the store
// only when the lease runs short). Reservations and leases of processes
// known dead are dropped by the book's maintenance on the ledger thread.
Result<store::Reservation> Gateway::reserve(const store::ReservationRequest& request) {
  return m_parts.quota.reserve(request);
}

// The ticket of a granted reservation, with the max_tokens it leaves room
// for; the 429 of a refused one.
Checked<Ticket> Gateway::ticket_for(const Grant& grant, const MessageRequest& message,
                                    const store::ReservationRequest& request,
                                    const store::Reservation& reservation) {
  if (!reservation.granted()) {
    m_parts.metrics.count_quota_rejection("daily_tokens");
    return std::unexpected(quota_rejection(reservation.status, request, message, m_parts.clock.now()));
  }
  Ticket ticket{grant.subject, reservation.id, grant.daily_token_limit, reservation.status, {}, {}};
  const std::int64_t output = forwarded_max_tokens(grant, message, reservation.amount);
  ticket.reserved = ReservedTokens{reservation.amount - output, output};
  if (message.max_tokens && output != *message.max_tokens) {
    ticket.clamped_max_tokens = output;
  }
  return ticket;
}

void Gateway::release(const Ticket& ticket) {
  m_limiter.release(ticket.subject);
}

Outbound Gateway::outbound_for(const Request& req, bool stream, const Ticket* ticket) const {
  Outbound out{req.method, req.target, forward_headers(req.headers), req.body, stream};
  if (ticket != nullptr && ticket->clamped_max_tokens) {
    // The body was accepted with exactly one top-level max_tokens, so this cannot miss.
    out.body = with_max_tokens(req.body, *ticket->clamped_max_tokens).value_or(req.body);
  }
  return out;
}

// Authenticate, then check the body; `call` learns who and which model as far as known.
Checked<AuthorizedMessage> Gateway::authorize_message(const Request& req, CallRecord& call) {
  auto caller = authenticate(req);
  if (!caller) {
    return propagate(caller);
  }
  call.subject = caller->grant.subject;
  call.jti = caller->jti;
  auto message = check_message(req, *caller);
  if (!message) {
    return propagate(message);
  }
  call.model = message->model;
  return AuthorizedMessage{std::move(*caller), std::move(*message)};
}

Outcome Gateway::rejected(CallRecord& call, const Rejection& rejection) {
  Outcome outcome;
  reject(outcome.response, call, rejection);
  finish(call);
  return outcome;
}

Outcome Gateway::messages(const Request& req) {
  CallRecord call = begin(req);
  auto authorized = authorize_message(req, call);
  if (authorized) {
    call.stream = authorized->message.stream;
  }
  auto ticket = authorized ? admit(authorized->caller, authorized->message) : propagate(authorized);
  if (!ticket) {
    return rejected(call, ticket.error());
  }
  Outbound out = outbound_for(req, authorized->message.stream, &*ticket);
  std::string slot = ticket->subject;
  return {{}, Forward{std::move(out), std::move(call), std::move(*ticket), std::move(slot), {}}};
}

// The upstream's status, request-id and relayable headers, onto the reply and the record.
void Gateway::relay_head(Response& res, CallRecord& call, const UpstreamHead& head) {
  call.status = head.status;
  if (const auto it = head.headers.find("request-id"); it != head.headers.end()) {
    call.request_id = std::string(it->value());
  }
  res.status = head.status;
  for (const auto& field : relay_headers(head.headers)) {
    res.headers.insert(field.name_string(), field.value());
  }
}

void Gateway::settle(const Ticket& ticket, const CallRecord& call) {
  store::UsageRecord record;
  record.at = m_parts.clock.now();
  record.subject = call.subject;
  record.jti = call.jti;
  record.model = call.model;
  record.status = call.status;
  record.input_tokens = call.usage.input_tokens;
  record.output_tokens = call.usage.output_tokens;
  record.cache_read_tokens = call.usage.cache_read_tokens;
  record.cache_write_tokens = call.usage.cache_write_tokens;
  record.latency_ms = elapsed_ms(call.started);
  record.request_id = call.request_id;
  record.stream = call.stream;
  record.quota_limit = ticket.limit;
  record.estimated = call.estimated;
  // Queued for the ledger's store thread, which logs a write that fails.
  m_parts.quota.settle(ticket.reservation_id, record);
}

void Gateway::charge(CallRecord& call, const Charge& charge) {
  call.usage = charge.usage;
  call.estimated = charge.estimated;
}

void Gateway::refresh_status(Ticket& ticket) {
  ticket.status = m_parts.quota.status(ticket.subject, m_parts.clock.now(), ticket.limit);
}

void Gateway::quota_headers(Response& res, const Ticket& ticket) {
  if (ticket.clamped_max_tokens) {
    res.set_header("claudegate-max-tokens-clamped", std::to_string(*ticket.clamped_max_tokens));
  }
  if (!ticket.limit) {
    return;
  }
  const auto& status = ticket.status;
  const std::int64_t remaining = std::max<std::int64_t>(0, *ticket.limit - status.used - status.reserved);
  res.set_header("x-claudegate-quota-limit", std::to_string(*ticket.limit));
  res.set_header("x-claudegate-quota-remaining", std::to_string(remaining));
  res.set_header("x-claudegate-quota-reset", duration::format_time(status.resets_at));
}

void Gateway::upstream_failed(Response& res, CallRecord& call, const Exchange& exchange) {
  const bool timeout = exchange.failure == UpstreamFailure::timeout;
  reject(res, call,
         Rejection{timeout ? 504 : 502, timeout ? "timeout_error" : "api_error", exchange.message});
}

void Gateway::reject(Response& res, CallRecord& call, const Rejection& rejection) {
  call.status = rejection.status;
  call.error = rejection.cause;
  write_rejection(res, rejection, call.request_id);
}

void Gateway::finish(const CallRecord& call) {
  const auto& u = call.usage;
  m_parts.metrics.count_request(call.status);
  m_parts.metrics.count_tokens(u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens);
  // One line per request, written field by field (no document built) with
  // the members in sorted order, as every other log line (a dumped Json) has them.
  std::string line;
  line.reserve(384);
  json::ObjectWriter out(line);
  out.integer("cache_read_tokens", u.cache_read_tokens);
  out.integer("cache_write_tokens", u.cache_write_tokens);
  if (call.client_gone) {
    out.boolean("client_gone", true);
  }
  if (!call.error.empty()) {
    out.string_lossy("error", call.error);
  }
  if (call.estimated) {
    out.boolean("estimated", true);
  }
  out.integer("input_tokens", u.input_tokens);
  out.string_lossy("jti", call.jti);
  out.integer("latency_ms", elapsed_ms(call.started));
  out.string_lossy("model", call.model);
  out.integer("output_tokens", u.output_tokens);
  out.string_lossy("request_id", call.request_id);
  out.string_lossy("route", call.route);
  out.integer("status", call.status);
  out.boolean("stream", call.stream);
  out.string_lossy("sub", call.subject);
  out.string_lossy("time", duration::format_time(m_parts.clock.now()));
  out.close();
  m_parts.log.write_rendered(std::move(line));
}

} // namespace claudegate::proxy
