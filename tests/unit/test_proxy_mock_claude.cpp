// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/mock_claude.hpp"

#include "claudegate/base/json.hpp"
#include "claudegate/proxy/message_request.hpp"
#include "claudegate/proxy/sse_usage.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

using namespace claudegate;
using namespace claudegate::proxy;
using json::Json;

namespace {

std::string request(std::string_view text, int max_tokens = 1024, bool stream = false) {
  return Json{{"model", "claude-haiku-4-5"},
              {"max_tokens", max_tokens},
              {"stream", stream},
              {"messages",
               {{{"role", "user"}, {"content", "first question"}},
                {{"role", "assistant"}, {"content", "an answer"}},
                {{"role", "user"}, {"content", {{{"type", "text"}, {"text", std::string(text)}}}}}}}}
      .dump();
}

// The text and usage a client reassembles from the SSE events.
struct Reassembled {
  std::string text;
  Usage usage;
  std::string stop_reason;
  bool finished = false;
};

Reassembled reassemble(const std::vector<std::string>& events) {
  Reassembled out;
  SseUsageMeter meter;
  for (const auto& event : events) {
    REQUIRE(event.substr(0, 7) == "event: ");
    REQUIRE(event.size() >= 2);
    REQUIRE(event.substr(event.size() - 2) == "\n\n");
    meter.feed(event);
    const auto data = Json::parse(event.substr(event.find("data: ") + 6));
    if (data["type"] == "content_block_delta") {
      out.text += data["delta"]["text"].get<std::string>();
    } else if (data["type"] == "message_delta") {
      out.stop_reason = data["delta"]["stop_reason"].get<std::string>();
    }
  }
  out.usage = meter.usage();
  out.finished = meter.finished();
  return out;
}

} // namespace

TEST_CASE("mock_claude: a Message shaped like the Messages API") {
  const std::string body = request("What is the capital of France?");
  const auto reply = mock_message(body, "req_1");
  CHECK(reply.status == 200);
  CHECK(reply.content_type == "application/json");
  const auto message = Json::parse(reply.body);
  CHECK(message["id"].get<std::string>().substr(0, 4) == "msg_");
  CHECK(message["type"] == "message");
  CHECK(message["role"] == "assistant");
  CHECK(message["model"] == "claude-haiku-4-5");
  CHECK(message["stop_reason"] == "end_turn");
  CHECK(message["stop_sequence"].is_null());
  REQUIRE(message["content"].size() == 1);
  CHECK(message["content"][0]["type"] == "text");
  const std::string text = message["content"][0]["text"];
  CHECK(text.find("Mock reply to: What is the capital of France?") == 0);
  const auto usage = message["usage"];
  CHECK(usage["input_tokens"] == inspect_message_request(body)->input_estimate);
  CHECK(usage["output_tokens"].get<int>() >= 24);
  CHECK(usage["output_tokens"].get<int>() <= 40);
  CHECK(usage["cache_creation_input_tokens"] == 0);
  CHECK(usage["cache_read_input_tokens"] == 0);
}

TEST_CASE("mock_claude: deterministic; different requests differ") {
  const std::string body = request("hello");
  CHECK(mock_message(body, "req_1").body == mock_message(body, "req_2").body);
  const auto a = Json::parse(mock_message(body, "r").body);
  const auto b = Json::parse(mock_message(request("hello there"), "r").body);
  CHECK(a["id"] != b["id"]);
  CHECK(a["id"].get<std::string>().size() == 28);
}

TEST_CASE("mock_claude: output words equal output tokens, cut at max_tokens") {
  const auto full = Json::parse(mock_message(request("count me"), "r").body);
  const std::string text = full["content"][0]["text"];
  CHECK(std::count(text.begin(), text.end(), ' ') + 1 == full["usage"]["output_tokens"].get<int>());
  const auto cut = Json::parse(mock_message(request("count me", 5), "r").body);
  CHECK(cut["stop_reason"] == "max_tokens");
  CHECK(cut["usage"]["output_tokens"] == 5);
  CHECK(cut["content"][0]["text"] == "Mock reply to: count me.");
}

TEST_CASE("mock_claude: the snippet is at most 40 bytes, one line, whole UTF-8 characters") {
  const std::string long_text = "line one\nline two\t" + std::string(20, 'x') + "\xc3\xa9\xc3\xa9\xc3\xa9";
  const auto message = Json::parse(mock_message(request(long_text), "r").body);
  const std::string text = message["content"][0]["text"];
  CHECK(text.find("Mock reply to: line one line two xxxxxxxxxxxxxxxxxxxx\xc3\xa9.") == 0);
  CHECK(text.find('\n') == std::string::npos);
}

TEST_CASE("mock_claude: the SSE stream carries the same text and usage as the JSON reply") {
  for (const int max_tokens : {1, 3, 5, 17, 1024}) {
    for (const char* text : {"hi", "Write a haiku about proxies", ""}) {
      CAPTURE(max_tokens);
      CAPTURE(text);
      const std::string body = request(text, max_tokens, true);
      const auto json_reply = mock_message(body, "r");
      const auto message = Json::parse(json_reply.body);
      const auto streamed = reassemble(mock_message_events(body, "r"));
      const Usage expected = usage_from_message(json_reply.body);
      CHECK(streamed.usage.input_tokens == expected.input_tokens);
      CHECK(streamed.usage.output_tokens == expected.output_tokens);
      CHECK(streamed.usage.cache_read_tokens == expected.cache_read_tokens);
      CHECK(streamed.usage.cache_write_tokens == expected.cache_write_tokens);
      CHECK(expected.output_tokens >= 1);
      CHECK(streamed.text == message["content"][0]["text"]);
      CHECK(streamed.stop_reason == message["stop_reason"]);
      CHECK(streamed.finished);
    }
  }
}

TEST_CASE("mock_claude: the SSE stream has Anthropic's event order") {
  const auto events = mock_message_events(request("order", 1024, true), "r");
  REQUIRE(events.size() >= 8);
  const auto name = [](const std::string& event) { return event.substr(7, event.find('\n') - 7); };
  CHECK(name(events[0]) == "message_start");
  CHECK(name(events[1]) == "content_block_start");
  CHECK(name(events[2]) == "ping");
  CHECK(name(events[3]) == "content_block_delta");
  CHECK(name(events[events.size() - 3]) == "content_block_stop");
  CHECK(name(events[events.size() - 2]) == "message_delta");
  CHECK(name(events.back()) == "message_stop");
  const auto start = Json::parse(events[0].substr(events[0].find("data: ") + 6));
  CHECK(start["message"]["usage"]["output_tokens"] == 1);
  CHECK(start["message"]["content"].empty());
  CHECK(start["message"]["model"] == "claude-haiku-4-5");
}

TEST_CASE("mock_claude: invalid requests get a 400 invalid_request_error envelope") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"not json", "not valid JSON"},
      {R"({"max_tokens":10,"messages":[]})", "model: Field required"},
      {R"({"model":"m","max_tokens":10})", "messages: Field required"},
      {R"({"model":"m","max_tokens":10,"messages":{}})", "messages: Input should be a valid list"},
      {R"({"model":"m","messages":[]})", "max_tokens: Field required"},
  };
  for (const auto& [body, wording] : cases) {
    CAPTURE(body);
    const auto reply = mock_message(body, "req_bad");
    CHECK(reply.status == 400);
    const auto error = Json::parse(reply.body);
    CHECK(error["type"] == "error");
    CHECK(error["error"]["type"] == "invalid_request_error");
    CHECK(error["error"]["message"].get<std::string>().find(wording) != std::string::npos);
    CHECK(error["request_id"] == "req_bad");
    const auto events = mock_message_events(body, "req_bad");
    REQUIRE(events.size() == 1);
    CHECK(events[0].find("event: error\ndata: ") == 0);
  }
}

TEST_CASE("mock_claude: count_tokens answers the input estimate, no max_tokens needed") {
  const std::string body =
      R"({"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Hello, world"}]})";
  const auto reply = mock_count_tokens(body);
  CHECK(reply.status == 200);
  CHECK(Json::parse(reply.body) == Json{{"input_tokens", inspect_message_request(body)->input_estimate}});
  const auto bad = mock_count_tokens(R"({"messages":[]})", "req_c");
  CHECK(bad.status == 400);
  CHECK(Json::parse(bad.body)["request_id"] == "req_c");
}

TEST_CASE("mock_claude: the model list has Anthropic's shape") {
  const auto& ids = mock_model_ids();
  REQUIRE(ids.size() >= 4);
  CHECK(std::find(ids.begin(), ids.end(), "claude-3-5-haiku-20241022") != ids.end());
  CHECK(std::find(ids.begin(), ids.end(), "claude-sonnet-4-5") != ids.end());
  const auto list = Json::parse(mock_models_body({"claude-haiku-4-5", "my-model"}));
  CHECK(list["has_more"] == false);
  CHECK(list["first_id"] == "claude-haiku-4-5");
  CHECK(list["last_id"] == "my-model");
  REQUIRE(list["data"].size() == 2);
  CHECK(list["data"][0]
        == Json{{"type", "model"},
                {"id", "claude-haiku-4-5"},
                {"display_name", "Claude Haiku 4.5"},
                {"created_at", "2025-10-15T00:00:00Z"}});
  CHECK(list["data"][1]["display_name"] == "my-model");
  const auto empty = Json::parse(mock_models_body({}));
  CHECK(empty["data"].empty());
  CHECK(empty["first_id"].is_null());
  CHECK(Json::parse(mock_model_body("claude-opus-4-1"))["display_name"] == "Claude Opus 4.1");
}
