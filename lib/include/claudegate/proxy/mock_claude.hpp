// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace claudegate::proxy {

// A response of the built-in fake Claude (serve-local --mock-upstream).
struct MockReply {
  int status = 200;
  std::string content_type;
  std::string body;
};

// The fake Claude's non-streaming answer to Messages request `request_body`:
// a deterministic Message (same body, same reply) with usage derived from the
// request; an invalid body gives 400 invalid_request_error naming `request_id`.
MockReply mock_message(std::string_view request_body, std::string_view request_id);

// The same answer as an SSE stream, one complete "event: X\ndata: {...}\n\n"
// string per event; usage and text equal mock_message's. An invalid body gives
// a single "error" event.
std::vector<std::string> mock_message_events(std::string_view request_body, std::string_view request_id);

// The fake /v1/messages/count_tokens answer {"input_tokens": N}, the same
// count mock_message charges; 400 on an invalid body, naming `request_id`.
MockReply mock_count_tokens(std::string_view request_body, std::string_view request_id);
MockReply mock_count_tokens(std::string_view request_body);

// The model ids the fake Claude knows, newest first.
const std::vector<std::string>& mock_model_ids();

// Anthropic's /v1/models list body for `ids`, in order.
std::string mock_models_body(const std::vector<std::string>& ids);

// Anthropic's /v1/models/{id} body for `id`.
std::string mock_model_body(std::string_view id);

} // namespace claudegate::proxy
