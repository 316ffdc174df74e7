// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "access_policy.hpp"
#include "auth_guard.hpp"
#include "keyring_watch.hpp"
#include "metrics.hpp"
#include "oauth_request.hpp"
#include "reply_writer.hpp"
#include "request_log.hpp"
#include "upstream.hpp"
#include "wire.hpp"

#include "claudegate/base/config.hpp"
#include "claudegate/jose/claims.hpp"
#include "claudegate/jose/jwks_remote.hpp"
#include "claudegate/jose/token.hpp"
#include "claudegate/proxy/message_request.hpp"
#include "claudegate/proxy/model_policy.hpp"
#include "claudegate/proxy/rate_limiter.hpp"
#include "claudegate/proxy/sse_usage.hpp"
#include "claudegate/store/api_key_cache.hpp"
#include "claudegate/store/api_keys.hpp"
#include "claudegate/store/quota_book.hpp"
#include "claudegate/store/store.hpp"
#include "claudegate/store/verified_cache.hpp"

#include <atomic>
#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>

// The gateway's request handlers (DESIGN.md §2): authenticate, authorize,
// reserve quota, forward or mock, meter, log.
namespace claudegate::proxy {

// Distinct tokens the gateway keeps verified at once (a few MiB at most).
constexpr std::size_t k_verified_cache_capacity = 10'000;

// An external IdP whose tokens are accepted besides the local keyring's
// (--jwks URL): same policy except the issuer, which must be `issuer`.
struct ExternalIssuer {
  jwks_remote::RemoteKeySet& keys;
  std::string issuer;
  std::string default_plan; // for a token without a "plan" claim
};

struct GatewayParts {
  const config::Config& config;
  store::Store& store;
  // The revocation epoch the verified-token and API-key caches compare
  // with: serve-local's RevocationWatch (no store read per request).
  store::EpochSource& epochs;
  store::QuotaBook& quota; // reservations from leases in memory; settled rows go behind the request
  const Clock& clock;
  RandomSource& random;
  KeyringWatch& keys;
  Upstream& upstream;
  Metrics& metrics;
  RequestLog& log;
  std::int64_t body_limit = 0;         // for the 413 message
  const ExternalIssuer* idp = nullptr; // --jwks; null when not configured
};

// An authenticated caller: the verified token and what it grants.
struct Caller {
  token::VerifiedToken token;
  Grant grant;
  std::string jti;
  const ExternalIssuer* idp = nullptr; // the IdP that issued the token; null for local tokens
};

// A token that verified, and the IdP that issued it (null: the local keyring).
struct PresentedToken {
  token::VerifiedToken token;
  const ExternalIssuer* idp = nullptr;
};

// A caller whose Messages request passed scope, model and max_tokens checks.
struct AuthorizedMessage {
  Caller caller;
  MessageRequest message;
};

// What one request's log line and ledger row say.
struct CallRecord {
  std::string request_id;
  std::string route;
  std::string subject;
  std::string jti;
  std::string model;
  int status = 0;
  Usage usage;
  bool stream = false;
  bool client_gone = false;
  bool estimated = false; // usage is the gateway's estimate (see charge_stream)
  std::string error;      // why the gateway itself failed (store, IdP), for the request log
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// A request's hold on the subject's limits: a concurrency slot and a quota reservation.
struct Ticket {
  std::string subject;
  std::int64_t reservation_id = 0;
  std::optional<std::int64_t> limit;
  store::QuotaStatus status;
  ReservedTokens reserved;                        // charged in full when usage is unknown
  std::optional<std::int64_t> clamped_max_tokens; // forwarded instead of the client's max_tokens
};

// A request the gateway sends upstream, and what it holds meanwhile: the
// reply is relayed as it arrives (metered against `ticket` for Messages),
// or, with `rewrite`, read whole (a models list, bounded) and rewritten.
struct Forward {
  Outbound out;
  CallRecord call;
  std::optional<Ticket> ticket;
  std::string slot; // the subject whose limiter slot the exchange holds ("" = none)
  std::function<std::string(const std::string& body)> rewrite;
};

// What a route answers: a response, or a forward to run (Gateway::forward).
struct Outcome {
  Response response;
  std::optional<Forward> forward;
};

template <typename T> using Checked = std::expected<T, Rejection>;

struct AdminRevocation; // what POST /admin/revoke asks (gateway_admin.cpp)
class ReplySink;        // a forward's reply on its way to the client (gateway_forward.cpp)

class Gateway {
public:
  // `access`: the roles the admin routes (and a remote /metrics) need.
  explicit Gateway(GatewayParts parts, access::AccessPolicy access = access::AccessPolicy());

  // The routes that go upstream: a rejection, or the forward to run.
  Outcome messages(const Request& req);
  Outcome count_tokens(const Request& req);
  Outcome list_models(const Request& req);
  Outcome get_model(const Request& req);
  void refresh(const Request& req, Response& res);
  void revoke(const Request& req, Response& res);
  void oauth_token(const Request& req, Response& res);
  void jwks(const Request& req, Response& res);
  void healthz(const Request& req, Response& res);
  void metrics(const Request& req, Response& res);
  void admin_usage(const Request& req, Response& res);
  void admin_revoke(const Request& req, Response& res);
  void admin_keys(const Request& req, Response& res);

  // The envelope of an error the gateway makes itself for `req` (404: no
  // such route; 500: a handler failed), metered and logged.
  Response error_reply(const Request& req, int status);
  // `rejection` of a request refused before routing (its body), metered and logged.
  Response refuse(const Request& req, const Rejection& rejection);
  // Answer an Expect: 100-continue head before its body: 100, or the 413/401/403 status put in `res`.
  int expect_continue(const Request& req, Response& res);

  // Run `forward` on the upstream on the calling io thread, relaying the
  // reply through `writer` as it arrives; the upstream is cancelled at once
  // when writer.gone() completes. Then meter, settle and log the call.
  asio::awaitable<void> forward(Forward forward, ReplyWriter& writer);

private:
  CallRecord begin(const Request& req) const;
  Checked<Caller> authenticate(const Request& req);
  Checked<Caller> authorize_route(const Request& req, CallRecord& call);
  // Report a refused credential: a 401 to the lockout guard (counted, logged,
  // maybe locking the IP), any other refusal to /metrics only.
  void auth_failed(const Request& req, std::string_view presented, std::string_view reason,
                   const Rejection& rejection);
  Result<PresentedToken> verify_presented(std::string_view presented);
  Result<PresentedToken> verify_external(std::string_view presented, UnixSeconds now);
  Checked<MessageRequest> check_message(const Request& req, const Caller& caller) const;
  Checked<AuthorizedMessage> authorize_message(const Request& req, CallRecord& call);
  Checked<void> take_slot(const Grant& grant);
  Checked<Ticket> admit(const Caller& caller, const MessageRequest& message);
  Result<store::Reservation> reserve(const store::ReservationRequest& request);
  Checked<Ticket> ticket_for(const Grant& grant, const MessageRequest& message,
                             const store::ReservationRequest& request, const store::Reservation& reservation);
  void release(const Ticket& ticket);
  Outbound outbound_for(const Request& req, bool stream, const Ticket* ticket = nullptr) const;

  friend class ReplySink;
  Outcome rejected(CallRecord& call, const Rejection& rejection);
  void relay_head(Response& res, CallRecord& call, const UpstreamHead& head);
  void meter(Forward& forward, const ReplySink& sink);
  void close_forward(Forward& forward);
  void settle(const Ticket& ticket, const CallRecord& call);
  void charge(CallRecord& call, const Charge& charge);
  void refresh_status(Ticket& ticket);
  void quota_headers(Response& res, const Ticket& ticket);
  void upstream_failed(Response& res, CallRecord& call, const Exchange& exchange);
  Checked<void> revoke_presented(const std::string& presented, CallRecord& call);
  void revocation_written();
  oauth::Checked<store::ApiKeyRecord> authenticate_client(const oauth::ClientCredentials& client);
  oauth::Checked<std::string> client_token(const Request& req, CallRecord& call);
  Outcome forward_models(const Request& req, CallRecord& call, const Caller& caller);

  using GuardedReply = std::function<void(const Request&, Response&, CallRecord&, const Caller&)>;
  void serve_guarded(const Request& req, Response& res, const GuardedReply& reply);
  void usage_reply(const Request& req, Response& res, CallRecord& call);
  void keys_reply(Response& res, CallRecord& call);
  void revoke_reply(const Request& req, Response& res, CallRecord& call, const Caller& caller);
  Checked<json::Json> record_revocation(const AdminRevocation& request, const Caller& caller);

  void reject(Response& res, CallRecord& call, const Rejection& rejection);
  void finish(const CallRecord& call);
  claims::VerifyPolicy policy() const;

  GatewayParts m_parts;
  access::AccessPolicy m_access;
  AuthGuard m_guard; // brute-force lockout of client IPs on the authentication routes
  SubjectLimiter m_limiter;
  // A session's requests carry one token: verified once, then until its exp
  // or the next revocation (by the store's revocation epoch).
  verified_cache::VerifiedCache m_verified{k_verified_cache_capacity};
  // API keys likewise: read from the store once, until the next revocation.
  api_key::KeyCache m_api_keys{k_verified_cache_capacity};
  std::string m_owner = store::reservation_owner(); // this process, on every reservation it makes
};

} // namespace claudegate::proxy
