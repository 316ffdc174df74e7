// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "http_message.hpp"

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

// Header rules between client, gateway and upstream (DESIGN.md §5):
// what is forwarded, what is relayed back, and the gateway's own errors.
namespace claudegate::proxy {

// The client's headers to send upstream, an allowlist (DESIGN.md §5):
// Content-Type, Accept, User-Agent, x-stainless-* and anthropic-*, unless
// Connection names them (hop-by-hop). Nothing else: no credential, Cookie,
// Origin, X-Forwarded-For or Accept-Encoding.
http::fields forward_headers(const http::fields& client);

// The upstream's headers to relay to the client: everything but hop-by-hop
// headers, Content-Length, Content-Type (set with the body), Server and the
// org-wide anthropic-ratelimit-* headers. Content-Encoding is relayed: the
// body is relayed as the upstream encoded it.
http::fields relay_headers(const http::fields& upstream);

// Why a request carries no usable credential: `reason` is the metrics label
// ("missing", "ambiguous" or "malformed"), `message` the 401's text.
struct CredentialProblem {
  std::string reason;
  std::string message;
};

// The JWT the client presented as "Authorization: Bearer <jwt>" (scheme in
// any case) or "x-api-key: <jwt>". Fails when there is none (an empty
// Bearer included: "no token presented"), when a header is repeated or the
// two disagree (two credentials are ambiguous), or when Authorization is not
// a Bearer token.
std::expected<std::string, CredentialProblem> presented_token(const Request& req);

// A gateway-made error: the status, Anthropic's error type and message.
struct Rejection {
  Rejection(int status_, std::string type_, std::string message_,
            std::optional<std::int64_t> retry_after_ = std::nullopt, bool should_retry_ = true)
      : status(status_), type(std::move(type_)), message(std::move(message_)), retry_after(retry_after_),
        should_retry(should_retry_) {}

  int status = 500;
  std::string type = "api_error";
  std::string message;
  std::optional<std::int64_t> retry_after; // seconds; sets retry-after
  bool should_retry = true;                // false adds x-should-retry: false
  std::string cause; // the gateway's own failure, for the operator's log; never sent to the client
};

// Fill `res` with `rejection` in Anthropic's envelope under `request_id`
// (401 also gets WWW-Authenticate: Bearer error="invalid_token"; 401 and
// 403 always get x-should-retry: false, as no retry makes a token valid).
void write_rejection(Response& res, const Rejection& rejection, const std::string& request_id);

// Anthropic's error type for an HTTP status the gateway itself answers with
// (other 4xx: invalid_request_error, other 5xx: api_error).
std::string_view error_type_for(int status);

// Bounds on one request head (request line and header fields).
struct HeadLimits {
  std::size_t max_line = 8192;       // request line or one field line, as common servers' limits
  std::size_t max_bytes = 64 * 1024; // the whole head
  std::size_t max_fields = 100;
};

// Check a complete request `head` (request line to blank line) before it is
// parsed, for what lenient parsers accept but RFC 9112 says to refuse:
// bare CR or LF, control bytes, obs-fold, malformed field names, more than
// `limits` allow, ambiguous framing (Content-Length repeated or not a
// number, Content-Length with Transfer-Encoding, a coding other than chunked),
// a compressed body (415: inflating it is unbounded) and a target
// whose path is not canonical (see check_target_path).
// Returns the head to parse (a request without framing gets Content-Length: 0,
// as RFC 9112 §6.3 says its body is empty; Range fields are dropped, so
// a relayed body is never sliced) or the rejection (400, 414, 415, 431).
std::expected<std::string, Rejection> check_request_head(std::string_view head, const HeadLimits& limits);

// The 414 or 431 a head still arriving (`partial`: no blank line yet) has
// already earned: a request line, or the whole, past `limits`, with
// check_request_head's messages. Nothing while it may still pass.
std::optional<Rejection> check_partial_head(std::string_view partial, const HeadLimits& limits);

// Why the path of origin-form `target` is not the one the gateway routes
// and forwards (the router sees it percent-decoded, the upstream as sent):
// percent-encoded "/", "\", "." or other unreserved bytes, malformed or
// control-byte escapes, a raw "\", "//", "." or ".." segments, a fragment.
// Nothing when it is canonical; other target forms are left to routing.
std::optional<std::string> check_target_path(std::string_view target);

// How the body of a head that check_request_head passed is framed.
struct BodyFraming {
  std::uint64_t length = 0; // Content-Length (0 when chunked)
  bool chunked = false;     // Transfer-Encoding: chunked
};
BodyFraming body_framing(std::string_view checked_head);

} // namespace claudegate::proxy
