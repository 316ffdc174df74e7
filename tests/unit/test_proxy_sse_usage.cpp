// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/sse_usage.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <vector>

using namespace claudegate::proxy;

namespace {

// A realistic stream as api.anthropic.com sends it (abridged text).
const std::string k_stream =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":"
    "\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{"
    "\"input_tokens\":472,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":2000,"
    "\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: "
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: "
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null},\"usage\":{\"output_tokens\":7}}\n\n"
    "event: message_delta\n"
    "data: "
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}"
    "\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

void check_stream_usage(const SseUsageMeter& meter) {
  CHECK(meter.usage().input_tokens == 472);
  CHECK(meter.usage().cache_write_tokens == 100);
  CHECK(meter.usage().cache_read_tokens == 2000);
  CHECK(meter.usage().output_tokens == 15);
  CHECK(meter.finished());
  CHECK(meter.model() == "claude-haiku-4-5");
}

std::string with_crlf(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '\n') {
      out += '\r';
    }
    out += c;
  }
  return out;
}

} // namespace

TEST_CASE("sse_usage: reads usage from a whole stream; output is a running total, not a sum") {
  SseUsageMeter meter;
  meter.feed(k_stream);
  check_stream_usage(meter);
}

TEST_CASE("sse_usage: events split at every possible chunk boundary") {
  for (const auto& stream : {k_stream, with_crlf(k_stream)}) {
    for (std::size_t split = 0; split <= stream.size(); ++split) {
      CAPTURE(split);
      SseUsageMeter meter;
      meter.feed(std::string_view(stream).substr(0, split));
      meter.feed(std::string_view(stream).substr(split));
      check_stream_usage(meter);
    }
  }
}

TEST_CASE("sse_usage: byte-at-a-time feeding with CRLF line ends") {
  const std::string stream = with_crlf(k_stream);
  SseUsageMeter meter;
  for (const char c : stream) {
    meter.feed(std::string_view(&c, 1));
  }
  check_stream_usage(meter);
}

TEST_CASE("sse_usage: not finished and zero output before message_delta") {
  SseUsageMeter meter;
  meter.feed(k_stream.substr(0, k_stream.find("event: content_block_start")));
  CHECK(meter.usage().input_tokens == 472);
  CHECK(meter.usage().output_tokens == 1);
  CHECK_FALSE(meter.finished());
  SseUsageMeter empty;
  CHECK_FALSE(empty.model());
  CHECK(empty.usage().input_tokens == 0);
}

TEST_CASE("sse_usage: an event is only applied once its blank line arrives") {
  SseUsageMeter meter;
  meter.feed("event: message_stop\ndata: {\"type\":\"message_stop\"}\n");
  CHECK_FALSE(meter.finished());
  meter.feed("\n");
  CHECK(meter.finished());
}

TEST_CASE("sse_usage: message_delta usage with input and cache fields replaces earlier values") {
  SseUsageMeter meter;
  meter.feed("data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,"
             "\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n"
             "data: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":12,"
             "\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":6,\"output_tokens\":40}}\n\n");
  CHECK(meter.usage().input_tokens == 12);
  CHECK(meter.usage().cache_write_tokens == 3);
  CHECK(meter.usage().cache_read_tokens == 6);
  CHECK(meter.usage().output_tokens == 40);
}

TEST_CASE("sse_usage: null and negative counts do not replace values") {
  SseUsageMeter meter;
  meter.feed("data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10}}}\n\n"
             "data: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":null,"
             "\"cache_read_input_tokens\":-4,\"output_tokens\":\"9\"}}\n\n");
  CHECK(meter.usage().input_tokens == 10);
  CHECK(meter.usage().cache_read_tokens == 0);
  CHECK(meter.usage().output_tokens == 0);
}

TEST_CASE("sse_usage: multi-line data is joined with newlines") {
  SseUsageMeter meter;
  meter.feed("event: message_delta\ndata: {\"type\":\"message_delta\",\ndata: \"usage\":{\"output_tokens\":"
             "\ndata:3}}\n\n");
  CHECK(meter.usage().output_tokens == 3);
}

TEST_CASE("sse_usage: comments, pings, unknown events and malformed JSON are ignored") {
  SseUsageMeter meter;
  meter.feed(": keep-alive comment\n\n"
             "event: ping\ndata: {\"type\":\"ping\"}\n\n"
             "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":\n\n"
             "event: message_delta\ndata: [1,2\n\n"
             "data: \xff\xfe\n\n"
             "data: \"just a string\"\n\n"
             "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n"
             "event: message_delta\n\n"
             "retry: 1000\nid: 7\n\n");
  CHECK(meter.usage().output_tokens == 0);
  CHECK_FALSE(meter.finished());
  meter.feed("data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":4}}\n\n");
  CHECK(meter.usage().output_tokens == 4);
}

TEST_CASE("sse_usage: the event name is used when the JSON carries no type") {
  SseUsageMeter meter;
  meter.feed("event: message_delta\ndata: {\"usage\":{\"output_tokens\":9}}\n\n");
  CHECK(meter.usage().output_tokens == 9);
}

TEST_CASE("sse_usage: an event over 1 MiB is dropped and the stream recovers") {
  SseUsageMeter meter;
  const std::string big(SseUsageMeter::k_max_event_bytes + 10, 'x');
  meter.feed(
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":5},\"pad\":\"");
  for (std::size_t i = 0; i < big.size(); i += 4096) {
    meter.feed(std::string_view(big).substr(i, 4096));
  }
  meter.feed("\"}\n\n");
  CHECK(meter.usage().output_tokens == 0);
  // Many data lines adding up to over the limit are dropped too.
  const std::string line = "data: " + std::string(1000, ' ') + "\n";
  meter.feed("data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":6}}\n");
  for (int i = 0; i < 1100; ++i) {
    meter.feed(line);
  }
  meter.feed("\n");
  CHECK(meter.usage().output_tokens == 0);
  meter.feed("data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":8}}\n\n");
  CHECK(meter.usage().output_tokens == 8);
}

TEST_CASE("sse_usage: usage_from_message reads a non-streaming body") {
  const auto usage =
      usage_from_message(R"({"id":"msg_1","type":"message","usage":{"input_tokens":25,"output_tokens":31,)"
                         R"("cache_creation_input_tokens":4,"cache_read_input_tokens":8}})");
  CHECK(usage.input_tokens == 25);
  CHECK(usage.output_tokens == 31);
  CHECK(usage.cache_write_tokens == 4);
  CHECK(usage.cache_read_tokens == 8);
}

TEST_CASE("sse_usage: usage_from_message gives zeros for absent or invalid usage") {
  for (const char* body :
       {"", "not json", "[]", "{}", R"({"usage":null})", R"({"usage":{"input_tokens":"x"}})",
        R"({"type":"error","error":{"type":"overloaded_error"}})"}) {
    CAPTURE(body);
    const auto usage = usage_from_message(body);
    CHECK(usage.input_tokens == 0);
    CHECK(usage.output_tokens == 0);
    CHECK(usage.cache_read_tokens == 0);
    CHECK(usage.cache_write_tokens == 0);
  }
}

TEST_CASE("sse_usage: a complete stream is charged what the API reported") {
  SseUsageMeter meter;
  meter.feed(k_stream);
  const Charge charge = charge_stream(meter, {500, 4096});
  CHECK_FALSE(charge.estimated);
  CHECK(charge.usage.output_tokens == 15);
  CHECK(charge.usage.input_tokens == 472);
}

TEST_CASE("sse_usage: a stream cut before its final usage is charged at least a token per 4 bytes relayed") {
  // The real API sends message_delta.usage only at the end: a client that
  // reads the deltas and leaves before it must not pay message_start's 1 token.
  const std::string start = k_stream.substr(0, k_stream.find("event: content_block_start"));
  std::string deltas;
  for (int i = 0; i < 200; ++i) {
    deltas += "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
              "{\"type\":\"text_delta\",\"text\":\"some generated words here \"}}\n\n";
  }
  SseUsageMeter meter;
  meter.feed(start + deltas);
  const Charge charge = charge_stream(meter, {500, 4096});
  CHECK(charge.estimated);
  CHECK(charge.usage.input_tokens == 472);
  CHECK(charge.usage.cache_read_tokens == 2000);
  CHECK(meter.content_bytes() == 200 * 26); // the text only, not the event envelopes
  CHECK(charge.usage.output_tokens == 1300);
}

TEST_CASE("sse_usage: tool input JSON and thinking count as generated, signatures do not") {
  SseUsageMeter meter;
  meter.feed("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
             "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Par\"}}\n\n"
             "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
             "{\"type\":\"thinking_delta\",\"thinking\":\"Let me think\"}}\n\n"
             "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
             "{\"type\":\"signature_delta\",\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3h\"}}\n\n");
  CHECK(meter.content_bytes() == std::string(R"({"city": "Par)").size() + std::string("Let me think").size());
}

TEST_CASE("sse_usage: an estimate never goes below the last reported count") {
  SseUsageMeter meter;
  meter.feed(k_stream.substr(0, k_stream.find("event: content_block_start")));
  meter.feed("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null},"
             "\"usage\":{\"output_tokens\":700}}\n\n");
  const Charge charge = charge_stream(meter, {500, 4096});
  CHECK(charge.estimated);
  CHECK(charge.usage.output_tokens == 700);
}

TEST_CASE("sse_usage: a stream that never started is charged its whole reservation") {
  SseUsageMeter meter;
  meter.feed("event: ping\ndata: {\"type\":\"ping\"}\n\n");
  const Charge charge = charge_stream(meter, {500, 4096});
  CHECK(charge.estimated);
  CHECK(charge.usage.input_tokens == 500);
  CHECK(charge.usage.output_tokens == 4096);
}

TEST_CASE("sse_usage: a 200 without readable usage is charged its reservation, estimated") {
  const ReservedTokens reserved{300, 1024};
  for (const std::string& body :
       {std::string("\x1f\x8b\x08\x00 gzip bytes"), std::string("<html>ok</html>"), std::string("{}"),
        std::string(R"({"usage":{"output_tokens":5}})"), std::string(R"({"usage":"none"})")}) {
    const Charge charge = charge_message(body, reserved);
    CHECK(charge.estimated);
    CHECK(charge.usage.input_tokens == 300);
    CHECK(charge.usage.output_tokens == 1024);
  }
  const Charge exact = charge_message(R"({"usage":{"input_tokens":3,"output_tokens":5}})", reserved);
  CHECK_FALSE(exact.estimated);
  CHECK(exact.usage.output_tokens == 5);
}

namespace {

// What a parsed document says of `body`'s top-level usage (nlohmann's DOM,
// duplicates resolved as it resolves them): the reference the streaming
// SAX reader is checked against.
std::optional<Usage> usage_by_document(const std::string& body) {
  const auto document = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("usage") || !document["usage"].is_object()) {
    return std::nullopt;
  }
  const auto& usage = document["usage"];
  const auto count = [&](const char* name) -> std::optional<std::int64_t> {
    if (!usage.contains(name) || !usage[name].is_number_integer()) {
      return std::nullopt;
    }
    if (usage[name].is_number_unsigned()) {
      return static_cast<std::int64_t>(std::min<std::uint64_t>(usage[name].get<std::uint64_t>(),
                                                               std::numeric_limits<std::int64_t>::max()));
    }
    const auto value = usage[name].get<std::int64_t>();
    return value < 0 ? std::nullopt : std::optional(value);
  };
  if (!count("input_tokens") || !count("output_tokens")) {
    return std::nullopt;
  }
  return Usage{*count("input_tokens"), *count("output_tokens"), count("cache_read_input_tokens").value_or(0),
               count("cache_creation_input_tokens").value_or(0)};
}

} // namespace

TEST_CASE("sse_usage: reported_usage reads only the top level's usage, as a parsed document would") {
  const std::vector<std::string> bodies = {
      R"({"usage":{"input_tokens":1,"output_tokens":2,"cache_creation_input_tokens":3,"cache_read_input_tokens":4}})",
      // usage-looking members anywhere but the top level's usage count for nothing
      R"({"content":[{"type":"text","text":"\"usage\":{\"input_tokens\":9}"}],"usage":{"input_tokens":1,"output_tokens":2}})",
      R"({"content":[{"usage":{"input_tokens":9,"output_tokens":9}}],"usage":{"input_tokens":1,"output_tokens":2}})",
      R"({"message":{"usage":{"input_tokens":9,"output_tokens":9}}})",
      R"([{"usage":{"input_tokens":9,"output_tokens":9}}])",
      R"({"usage":{"server_tool_use":{"input_tokens":9,"output_tokens":9},"input_tokens":1,"output_tokens":2}})",
      R"({"usage":{"input_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":7},"output_tokens":2}})",
      // duplicates: the later member wins, whole
      R"({"usage":{"input_tokens":1,"output_tokens":2},"usage":{"input_tokens":5,"output_tokens":6}})",
      R"({"usage":{"input_tokens":1,"output_tokens":2},"usage":null})",
      R"({"usage":{"input_tokens":1,"output_tokens":2},"usage":{"output_tokens":6}})",
      R"({"usage":{"input_tokens":1,"input_tokens":"x","output_tokens":2}})",
      R"({"usage":{"input_tokens":"x","input_tokens":4,"output_tokens":2}})",
      // counts that are no counts
      R"({"usage":{"input_tokens":-1,"output_tokens":2}})",
      R"({"usage":{"input_tokens":1.5,"output_tokens":2}})",
      R"({"usage":{"input_tokens":[1],"output_tokens":2}})",
      R"({"usage":{"input_tokens":{"n":1},"output_tokens":2}})",
      R"({"usage":{"input_tokens":true,"output_tokens":2}})",
      R"({"usage":{"input_tokens":18446744073709551615,"output_tokens":2}})",
      // not JSON, or cut short: nothing
      R"({"usage":{"input_tokens":1,"output_tokens":2})",
      R"({"usage":{"input_tokens":1,"output_tokens":2}} trailing)",
      "",
      "null",
      R"("usage")",
  };
  for (const auto& body : bodies) {
    CAPTURE(body);
    const auto streamed = reported_usage(body);
    const auto reference = usage_by_document(body);
    REQUIRE(streamed.has_value() == reference.has_value());
    if (streamed) {
      CHECK(streamed->input_tokens == reference->input_tokens);
      CHECK(streamed->output_tokens == reference->output_tokens);
      CHECK(streamed->cache_read_tokens == reference->cache_read_tokens);
      CHECK(streamed->cache_write_tokens == reference->cache_write_tokens);
    }
  }
  CHECK(reported_usage(bodies[7])->input_tokens == 5); // the reference is not vacuous
}
