// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/message_request.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace claudegate;
using namespace claudegate::proxy;

namespace {

std::string error_of(std::string_view body) {
  const auto r = inspect_message_request(body);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::malformed);
  return r.error().message;
}

std::int64_t estimate_of(const std::string& body) {
  const auto r = inspect_message_request(body);
  REQUIRE(r);
  return r->input_estimate;
}

} // namespace

TEST_CASE("message_request: reads model, stream and max_tokens") {
  const auto r = inspect_message_request(
      R"({"model":"claude-haiku-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Hello"}]})");
  REQUIRE(r);
  CHECK(r->model == "claude-haiku-4-5");
  CHECK(r->stream);
  CHECK(r->max_tokens == 1024);
  CHECK(r->input_estimate >= 9);
}

TEST_CASE("message_request: stream and max_tokens are optional") {
  const auto r = inspect_message_request(R"({"model":"m","messages":[],"stream":null})");
  REQUIRE(r);
  CHECK_FALSE(r->stream);
  CHECK_FALSE(r->max_tokens);
  CHECK(r->input_estimate == 1);
}

TEST_CASE("message_request: refusals are worded like invalid_request_error") {
  CHECK(error_of(R"({"messages":[]})") == "model: Field required");
  CHECK(error_of(R"({"model":5})") == "model: Input should be a valid string");
  CHECK(error_of(R"({"model":"m","stream":"yes"})") == "stream: Input should be a valid boolean");
  CHECK(error_of(R"({"model":"m","max_tokens":"9"})") == "max_tokens: Input should be a valid integer");
  CHECK(error_of(R"({"model":"m","max_tokens":1.5})") == "max_tokens: Input should be a valid integer");
  CHECK(error_of(R"({"model":"m","max_tokens":18446744073709551615})")
        == "max_tokens: Input should be a valid integer");
  CHECK(error_of(R"({"model":"m","max_tokens":0})")
        == "max_tokens: Input should be greater than or equal to 1");
  CHECK(error_of(R"({"model":"m","max_tokens":-3})")
        == "max_tokens: Input should be greater than or equal to 1");
}

TEST_CASE("message_request: non-objects and invalid JSON are malformed without echoing input") {
  CHECK(error_of("[]").find("valid dictionary") != std::string::npos);
  CHECK(error_of("\"model\"").find("valid dictionary") != std::string::npos);
  const std::string bad = error_of("{\"model\":\"secret-\xff\"}");
  CHECK(bad.find("not valid JSON") != std::string::npos);
  CHECK(bad.find("secret") == std::string::npos);
  CHECK(error_of("").find("not valid JSON") != std::string::npos);
  CHECK(error_of(R"({"model":"m",})").find("not valid JSON") != std::string::npos);
}

TEST_CASE("message_request: nesting is limited to 64 levels") {
  const auto nest = [](int depth) {
    return R"({"model":"m","metadata":)" + std::string(static_cast<std::size_t>(depth - 1), '[')
           + std::string(static_cast<std::size_t>(depth - 1), ']') + "}";
  };
  CHECK(inspect_message_request(nest(64)));
  CHECK(error_of(nest(65)).find("deeper than 64") != std::string::npos);
  CHECK(error_of(nest(100000)).find("deeper than 64") != std::string::npos);
}

TEST_CASE("message_request: large bodies are accepted") {
  const std::string text(4 * 1024 * 1024, 'a');
  const auto r =
      inspect_message_request(R"({"model":"m","messages":[{"role":"user","content":")" + text + "\"}]}");
  REQUIRE(r);
  CHECK(r->input_estimate >= static_cast<std::int64_t>(text.size() / 3));
}

TEST_CASE("message_request: the estimate counts system, text blocks, tools and messages") {
  const std::string text(300, 'x');
  const auto plain = estimate_of(R"({"model":"m","messages":[{"role":"user","content":")" + text + "\"}]}");
  CHECK(plain >= 100 + 8);
  CHECK(plain < 100 + 8 + 10);
  const auto blocks = estimate_of(
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":")" + text + "\"}]}]}");
  CHECK(blocks >= plain);
  CHECK(blocks < plain + 10);
  const auto with_system = estimate_of(R"({"model":"m","system":[{"type":"text","text":")" + text
                                       + R"("}],"messages":[{"role":"user","content":")" + text + "\"}]}");
  CHECK(with_system >= plain + 100);
  const auto with_tools = estimate_of(R"({"model":"m","tools":[{"name":"t","description":")" + text
                                      + R"("}],"messages":[{"role":"user","content":")" + text + "\"}]}");
  CHECK(with_tools >= plain + 100);
  const auto two_messages = estimate_of(R"({"model":"m","messages":[{"role":"user","content":")" + text
                                        + R"("},{"role":"assistant","content":"ok"}]})");
  CHECK(two_messages >= plain + 8);
}

TEST_CASE("message_request: images are charged a fixed amount, not by base64 size") {
  const std::string data(3 * 1024 * 1024, 'A');
  const auto estimate = estimate_of(
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":")"
      + data + R"("}},{"type":"text","text":"what is this?"}]}]})");
  CHECK(estimate >= 1600);
  CHECK(estimate < 1700);
}

TEST_CASE("message_request: tool use and tool results count") {
  const std::string text(600, 'y');
  const auto estimate = estimate_of(
      R"({"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"run","input":{"cmd":")"
      + text
      + R"("}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":")"
      + text + "\"}]}]}]}");
  CHECK(estimate >= 400 + 16);
}

TEST_CASE("message_request: duplicate member names are refused at any depth") {
  // An upstream that keeps the first "model" would serve another model than the one checked.
  CHECK(error_of(R"({"model":"claude-opus-4-1","model":"claude-haiku-4-5","max_tokens":10})")
            .find("duplicate member name")
        != std::string::npos);
  CHECK(error_of(R"({"model":"m","max_tokens":64000,"max_tokens":10})").find("\"max_tokens\"")
        != std::string::npos);
  CHECK(error_of(R"({"model":"m","stream":true,"stream":false})").find("send each member once")
        != std::string::npos);
  CHECK(error_of(R"({"model":"m","messages":[{"role":"user","role":"assistant","content":"x"}]})")
            .find("duplicate member name")
        != std::string::npos);
  // The same name spelled with an escape is the same member.
  CHECK(error_of(R"({"model":"m","max_tokens":1,"max\u005ftokens":2})").find("duplicate")
        != std::string::npos);
}

TEST_CASE("message_request: inputs the body cannot bound are named") {
  const auto unbounded = [](const std::string& body) {
    const auto r = inspect_message_request(body);
    REQUIRE(r);
    return r->unbounded_input;
  };
  CHECK(unbounded(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})").empty());
  CHECK(
      unbounded(
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","data":"AAAA"}}]}]})")
          .empty());
  CHECK(
      unbounded(
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]})")
      == "a document with source type \"url\"");
  CHECK(
      unbounded(
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"file","file_id":"f"}}]}]}]})")
      == "a document with source type \"file\"");
  CHECK(
      unbounded(
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"container_upload","file_id":"f"}]}]})")
      == "a container_upload block");
  CHECK(unbounded(R"({"model":"m","tools":[{"type":"web_fetch_20250910","name":"web_fetch"}],"messages":[]})")
        == "the server tool web_fetch_20250910");
  CHECK(
      unbounded(R"({"model":"m","tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[]})")
      == "the server tool web_search_20250305");
  CHECK_FALSE(
      unbounded(R"({"model":"m","mcp_servers":[{"type":"url","url":"https://m"}],"messages":[]})").empty());
  CHECK(
      unbounded(R"({"model":"m","tools":[{"name":"get_weather","input_schema":{}}],"messages":[]})").empty());
}

TEST_CASE("message_request: with_max_tokens replaces only the top-level value") {
  const std::string body =
      R"({ "model" : "m", "metadata": {"max_tokens": 5, "s": "}\"{"}, "max_tokens" : 64000 , "messages":[]})";
  const auto out = with_max_tokens(body, 4096);
  REQUIRE(out);
  CHECK(
      *out
      == R"({ "model" : "m", "metadata": {"max_tokens": 5, "s": "}\"{"}, "max_tokens" : 4096 , "messages":[]})");
  const auto last = with_max_tokens(R"({"model":"m","max_tokens":9})", 1);
  REQUIRE(last);
  CHECK(*last == R"({"model":"m","max_tokens":1})");
  const auto escaped = with_max_tokens(R"({"max\u005ftokens":9,"model":"m"})", 2);
  REQUIRE(escaped);
  CHECK(*escaped == R"({"max\u005ftokens":2,"model":"m"})");
  CHECK_FALSE(with_max_tokens(R"({"model":"m"})", 1));
}
