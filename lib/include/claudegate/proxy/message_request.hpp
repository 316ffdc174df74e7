// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace claudegate::proxy {

// What the proxy needs to know about a /v1/messages (or count_tokens) body;
// the body itself is forwarded byte for byte.
struct MessageRequest {
  std::string model;
  bool stream = false;
  std::optional<std::int64_t> max_tokens;
  std::int64_t input_estimate = 0; // conservative input token estimate, at least 1
  // What makes the input impossible to bound from the body (a document
  // fetched by URL or from the Files API, a server tool such as web_search
  // or web_fetch, a container upload); empty when the estimate bounds it.
  std::string unbounded_input;
};

// Nesting deeper than this is refused; real requests stay far below it.
inline constexpr int k_max_request_depth = 64;

// Read `body` (a JSON object of up to the body limit, default 32 MiB): its
// string "model", optional boolean "stream", optional positive integer
// "max_tokens", and an input token estimate. Fails with malformed and a
// message worded like Anthropic's invalid_request_error, e.g. "model: Field required".
Result<MessageRequest> inspect_message_request(std::string_view body);

// Parse `body` as a JSON object of at most k_max_request_depth levels, no
// size limit of its own, refusing duplicate member names at any depth (an
// upstream that keeps the first of two "model" members would serve another
// model than the one checked). Fails with malformed, worded for invalid_request_error.
Result<json::Json> parse_request_body(std::string_view body);

// A conservative estimate of the input tokens of parsed request `body`:
// about a token per 3 UTF-8 bytes of system, message and tool text, plus 8
// per message and a fixed charge per image; at least 1.
std::int64_t estimate_input_tokens(const json::Json& body);

// Why the input of parsed request `body` cannot be bounded from the body
// itself (see MessageRequest::unbounded_input); empty when it can.
std::string unbounded_input(const json::Json& body);

// `body` (a JSON object already accepted by inspect_message_request) with
// the value of its top-level "max_tokens" member replaced by `max_tokens`,
// every other byte unchanged. Fails with malformed when it has no such member.
Result<std::string> with_max_tokens(std::string_view body, std::int64_t max_tokens);

} // namespace claudegate::proxy
