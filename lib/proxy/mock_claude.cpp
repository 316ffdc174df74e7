// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/mock_claude.hpp"

#include "claudegate/base/json.hpp"
#include "claudegate/base/text.hpp"
#include "claudegate/proxy/anthropic_error.hpp"
#include "claudegate/proxy/message_request.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

namespace claudegate::proxy {

namespace {

using json::Json;

constexpr std::size_t k_snippet_bytes = 40;
constexpr std::size_t k_longest_reply_words = 40;
constexpr std::size_t k_words_per_delta = 4;
constexpr std::string_view k_message_id_alphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::array<std::string_view, 16> k_filler{
    "this", "is", "a",      "deterministic", "answer", "from",  "the",    "claudegate",
    "mock", "so", "quotas", "metering",      "and",    "tests", "behave", "predictably"};

// What the mock needs from a valid request.
struct MockRequest {
  std::string model;
  std::int64_t max_tokens = 0;
  std::int64_t input_tokens = 0;
  std::string last_user_text;
  std::uint64_t seed = 0; // hash of the body: same request, same reply
};

// The reply, before it is shaped as JSON or SSE.
struct MockAnswer {
  std::string id;
  std::vector<std::string> words; // one output token per word
  bool truncated = false;
};

std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  }
  return hash;
}

// splitmix64: a cheap, well-mixed sequence from one seed.
std::uint64_t next_random(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string message_id(std::uint64_t seed) {
  std::string id = "msg_01";
  for (int i = 0; i < 22; ++i) {
    id += k_message_id_alphabet[next_random(seed) % k_message_id_alphabet.size()];
  }
  return id;
}

// The text blocks of one message's content, joined with spaces.
std::string text_of(const Json& content) {
  if (content.is_string()) {
    return content.get<std::string>();
  }
  std::string text;
  if (!content.is_array()) {
    return text;
  }
  for (const auto& block : content) {
    if (block.is_object() && block.value("type", "") == "text" && block.contains("text")
        && block["text"].is_string()) {
      text += (text.empty() ? "" : " ") + block["text"].get<std::string>();
    }
  }
  return text;
}

std::string last_user_text(const Json& messages) {
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->is_object() && it->value("role", "") == "user" && it->contains("content")) {
      return text_of((*it)["content"]);
    }
  }
  return {};
}

// At most k_snippet_bytes of `text` on one line, never cutting a UTF-8 sequence.
std::string snippet_of(std::string_view text) {
  std::string flat;
  for (const char c : text) {
    const bool blank = static_cast<unsigned char>(c) < 0x20 || c == ' ';
    if (!blank || (!flat.empty() && flat.back() != ' ')) {
      flat += blank ? ' ' : c;
    }
  }
  if (flat.size() > k_snippet_bytes) {
    std::size_t cut = k_snippet_bytes;
    while (cut > 0 && (static_cast<unsigned char>(flat[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    flat.resize(cut);
  }
  while (!flat.empty() && flat.back() == ' ') {
    flat.pop_back();
  }
  return flat;
}

std::unexpected<Error> missing(const char* field) {
  return fail(Errc::malformed, std::string(field) + ": Field required");
}

Result<MockRequest> read_request(std::string_view body, bool needs_max_tokens) {
  const auto inspected = inspect_message_request(body);
  if (!inspected) {
    return propagate(inspected);
  }
  const Json parsed = parse_request_body(body).value_or(Json::object());
  const auto messages = parsed.find("messages");
  if (messages == parsed.end() || !messages->is_array()) {
    return messages == parsed.end() ? missing("messages")
                                    : fail(Errc::malformed, "messages: Input should be a valid list");
  }
  if (needs_max_tokens && !inspected->max_tokens) {
    return missing("max_tokens");
  }
  return MockRequest{inspected->model, inspected->max_tokens.value_or(0), inspected->input_estimate,
                     last_user_text(*messages), fnv1a(body)};
}

std::vector<std::string> split_words(std::string_view line) {
  const auto items = text::words(line);
  return {items.begin(), items.end()};
}

// "Mock reply to: <snippet>." and filler words, 24 to 40 words by the body
// hash, cut to max_tokens words.
MockAnswer answer(const MockRequest& request) {
  std::uint64_t state = request.seed;
  MockAnswer out{message_id(request.seed), {"Mock", "reply", "to:"}, false};
  const std::string snippet = snippet_of(request.last_user_text);
  for (auto& word : split_words(snippet.empty() ? "(no text)" : snippet)) {
    out.words.push_back(std::move(word));
  }
  out.words.back() += '.';
  const std::size_t natural = std::max<std::size_t>(out.words.size() + 4, 24 + next_random(state) % 17);
  while (out.words.size() < natural) {
    out.words.emplace_back(k_filler[next_random(state) % k_filler.size()]);
  }
  out.words.back() += '.';
  const auto limit = static_cast<std::size_t>(std::max<std::int64_t>(1, request.max_tokens));
  if (out.words.size() > limit) {
    out.words.resize(limit);
    out.truncated = true;
  }
  return out;
}

std::string joined(const std::vector<std::string>& words, std::size_t from, std::size_t to) {
  std::string text;
  for (std::size_t i = from; i < to; ++i) {
    text += (i == 0 ? "" : " ") + words[i];
  }
  return text;
}

Json usage_json(std::int64_t input_tokens, std::int64_t output_tokens) {
  return {{"input_tokens", input_tokens},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", 0},
          {"output_tokens", output_tokens}};
}

Json message_json(const MockRequest& request, const MockAnswer& reply) {
  return {
      {"id", reply.id},
      {"type", "message"},
      {"role", "assistant"},
      {"model", request.model},
      {"content", Json::array({{{"type", "text"}, {"text", joined(reply.words, 0, reply.words.size())}}})},
      {"stop_reason", reply.truncated ? "max_tokens" : "end_turn"},
      {"stop_sequence", nullptr},
      {"usage", usage_json(request.input_tokens, static_cast<std::int64_t>(reply.words.size()))}};
}

std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string sse_event(std::string_view name, const Json& data) {
  return "event: " + std::string(name) + "\ndata: " + dump(data) + "\n\n";
}

// message_start (no content yet, output_tokens 1 as the API reports), the text block's start, a ping.
std::vector<std::string> opening_events(const MockRequest& request, const MockAnswer& reply) {
  Json message = message_json(request, reply);
  message["content"] = Json::array();
  message["stop_reason"] = nullptr;
  message["usage"] = usage_json(request.input_tokens, 1);
  const Json block = {{"type", "text"}, {"text", ""}};
  return {sse_event("message_start", {{"type", "message_start"}, {"message", message}}),
          sse_event("content_block_start",
                    {{"type", "content_block_start"}, {"index", 0}, {"content_block", block}}),
          sse_event("ping", {{"type", "ping"}})};
}

MockReply invalid_request(const Error& error, std::string_view request_id) {
  return {400, "application/json", error_body("invalid_request_error", error.message, request_id)};
}

} // namespace

MockReply mock_message(std::string_view request_body, std::string_view request_id) {
  const auto request = read_request(request_body, true);
  if (!request) {
    return invalid_request(request.error(), request_id);
  }
  return {200, "application/json", dump(message_json(*request, answer(*request)))};
}

std::vector<std::string> mock_message_events(std::string_view request_body, std::string_view request_id) {
  const auto request = read_request(request_body, true);
  if (!request) {
    return {"event: error\ndata: " + error_body("invalid_request_error", request.error().message, request_id)
            + "\n\n"};
  }
  const MockAnswer reply = answer(*request);
  std::vector<std::string> events = opening_events(*request, reply);
  for (std::size_t from = 0; from < reply.words.size(); from += k_words_per_delta) {
    const std::size_t to = std::min(reply.words.size(), from + k_words_per_delta);
    const Json delta = {{"type", "text_delta"}, {"text", joined(reply.words, from, to)}};
    events.push_back(
        sse_event("content_block_delta", {{"type", "content_block_delta"}, {"index", 0}, {"delta", delta}}));
  }
  events.push_back(sse_event("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}}));
  const Json stop = {{"stop_reason", reply.truncated ? "max_tokens" : "end_turn"},
                     {"stop_sequence", nullptr}};
  const Json usage = {{"output_tokens", static_cast<std::int64_t>(reply.words.size())}};
  events.push_back(
      sse_event("message_delta", {{"type", "message_delta"}, {"delta", stop}, {"usage", usage}}));
  events.push_back(sse_event("message_stop", {{"type", "message_stop"}}));
  return events;
}

MockReply mock_count_tokens(std::string_view request_body, std::string_view request_id) {
  const auto request = read_request(request_body, false);
  if (!request) {
    return invalid_request(request.error(), request_id);
  }
  return {200, "application/json", dump(Json{{"input_tokens", request->input_tokens}})};
}

MockReply mock_count_tokens(std::string_view request_body) {
  return mock_count_tokens(request_body, "req_mock");
}

namespace {

struct KnownModel {
  std::string_view id;
  std::string_view display_name;
  std::string_view created_at;
};

const std::array<KnownModel, 7> k_known_models{{
    {"claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"},
    {"claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"},
    {"claude-opus-4-1", "Claude Opus 4.1", "2025-08-05T00:00:00Z"},
    {"claude-sonnet-4-0", "Claude Sonnet 4", "2025-05-22T00:00:00Z"},
    {"claude-3-7-sonnet-20250219", "Claude Sonnet 3.7", "2025-02-24T00:00:00Z"},
    {"claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"},
    {"claude-3-haiku-20240307", "Claude Haiku 3", "2024-03-07T00:00:00Z"},
}};

Json model_json(std::string_view id) {
  const auto known = std::find_if(k_known_models.begin(), k_known_models.end(),
                                  [id](const KnownModel& model) { return model.id == id; });
  const bool found = known != k_known_models.end();
  return {{"type", "model"},
          {"id", std::string(id)},
          {"display_name", std::string(found ? known->display_name : id)},
          {"created_at", std::string(found ? known->created_at : "2025-01-01T00:00:00Z")}};
}

} // namespace

const std::vector<std::string>& mock_model_ids() {
  static const std::vector<std::string> ids = [] {
    std::vector<std::string> out;
    for (const auto& model : k_known_models) {
      out.emplace_back(model.id);
    }
    return out;
  }();
  return ids;
}

std::string mock_models_body(const std::vector<std::string>& ids) {
  Json data = Json::array();
  for (const auto& id : ids) {
    data.push_back(model_json(id));
  }
  const Json first = ids.empty() ? Json(nullptr) : Json(ids.front());
  const Json last = ids.empty() ? Json(nullptr) : Json(ids.back());
  return dump(Json{{"data", data}, {"has_more", false}, {"first_id", first}, {"last_id", last}});
}

std::string mock_model_body(std::string_view id) {
  return dump(model_json(id));
}

} // namespace claudegate::proxy
