// SPDX-License-Identifier: Apache-2.0
// Expect: 100-continue (RFC 9110 §10.1.1): the client waits for 100
// Continue before it sends the body, so a request the gateway would refuse
// is refused before the body comes, never after inviting it.
#include "gateway.hpp"

#include <fmt/core.h>

#include <charconv>

namespace claudegate::proxy {

namespace {

// The model routes, which take a credential from the head (the admin routes
// also need a role; the /auth and /oauth routes take theirs from the body).
bool needs_credential(const std::string& path) {
  return path == "/v1/messages" || path == "/v1/messages/count_tokens" || path == "/v1/models"
         || path.starts_with("/v1/models/");
}

// The head's Content-Length, or 0 when it has none (chunked: limited as it is read).
std::uint64_t announced_length(const Request& req) {
  const std::string value = req.header("Content-Length");
  std::uint64_t length = 0;
  std::from_chars(value.data(), value.data() + value.size(), length);
  return length;
}

} // namespace

int Gateway::expect_continue(const Request& req, Response& res) {
  const auto limit = static_cast<std::uint64_t>(m_parts.body_limit);
  std::optional<Rejection> refused;
  if (m_parts.body_limit > 0 && announced_length(req) > limit) {
    refused = Rejection{413, "request_too_large",
                        fmt::format("request body is larger than the limit of {} bytes", limit)};
  } else if (m_access.guards(req.path)) {
    CallRecord scratch;
    if (auto caller = authorize_route(req, scratch); !caller) {
      refused = caller.error();
    }
  } else if (needs_credential(req.path)) {
    if (auto caller = authenticate(req); !caller) {
      refused = caller.error();
    }
  }
  if (!refused) {
    return 100;
  }
  CallRecord call = begin(req);
  reject(res, call, *refused);
  finish(call);
  return res.status;
}

} // namespace claudegate::proxy
