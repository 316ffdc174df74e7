// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <httplib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Header rules between client, gateway and upstream (SPEC §4 forwarding):
// what is forwarded, what is relayed back, and the gateway's own errors.
namespace claudegate::proxy {

// The client's headers to send upstream: everything but credentials,
// hop-by-hop headers (and those named in Connection), Host, Content-Length,
// Accept-Encoding (the gateway reads usage from the body) and httplib's
// REMOTE_ADDR-style pseudo headers.
httplib::Headers forward_headers(const httplib::Headers& client);

// The upstream's headers to relay to the client: everything but hop-by-hop
// headers, Content-Length, Content-Type (set with the body) and the
// org-wide anthropic-ratelimit-* headers.
httplib::Headers relay_headers(const httplib::Headers& upstream);

// The JWT the client presented: "Authorization: Bearer <jwt>", else "x-api-key".
std::optional<std::string> presented_token(const httplib::Request& req);

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
};

// Fill `res` with `rejection` in Anthropic's envelope under `request_id`
// (401 also gets WWW-Authenticate: Bearer error="invalid_token").
void write_rejection(httplib::Response& res, const Rejection& rejection, const std::string& request_id);

// Anthropic's error type for an HTTP status the gateway itself answers with.
std::string_view error_type_for(int status);

} // namespace claudegate::proxy
