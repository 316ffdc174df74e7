// SPDX-License-Identifier: Apache-2.0
#include "claudegate/json.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace claudegate;

namespace {

std::string nested(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[')
         + std::string(static_cast<std::size_t>(depth), ']');
}

std::string message_of(const Result<json::Json>& r) {
  return r ? std::string() : r.error().message;
}

} // namespace

TEST_CASE("json: parses an object") {
  const auto obj = json::parse_object(R"({"a":1,"b":{"c":[1,2,{"d":null}]},"e":"x"})");
  REQUIRE(obj);
  CHECK((*obj)["a"] == 1);
  CHECK((*obj)["b"]["c"][2].contains("d"));
}

TEST_CASE("json: parse_object refuses other top-level types") {
  for (const char* text : {"[]", "1", "\"s\"", "null", "true"}) {
    CAPTURE(text);
    const auto r = json::parse_object(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::malformed);
    CHECK(r.error().message.find("expected an object") != std::string::npos);
  }
}

TEST_CASE("json: parse_value accepts any value") {
  CHECK(json::parse_value("[1,2]"));
  CHECK(json::parse_value("42")->get<int>() == 42);
  CHECK(json::parse_value("\"s\"")->get<std::string>() == "s");
}

TEST_CASE("json: rejects duplicate member names at any depth") {
  for (const char* text : {R"({"a":1,"a":2})", R"({"x":{"a":1,"a":1}})", R"({"x":[{"b":1,"c":2,"b":3}]})",
                           R"({"a":1,"\u0061":2})"}) {
    CAPTURE(text);
    const auto r = json::parse_object(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::malformed);
    CHECK(message_of(r).find("duplicate member name") != std::string::npos);
  }
  CHECK(json::parse_value(R"([{"a":1},{"a":2}])"));
  CHECK(json::parse_object(R"({"a":{"a":{"a":1}}})"));
}

TEST_CASE("json: enforces the depth limit") {
  json::Limits limits;
  limits.max_depth = 4;
  CHECK(json::parse_value(nested(4), limits));
  const auto r = json::parse_value(nested(5), limits);
  REQUIRE_FALSE(r);
  CHECK(message_of(r).find("nesting deeper than 4") != std::string::npos);
  CHECK(json::parse_object(R"({"a":{"b":{"c":{}}}})", limits));
  CHECK(json::parse_object(R"({"a":{"b":{"c":{"d":1}}}})", limits));
  CHECK_FALSE(json::parse_object(R"({"a":{"b":{"c":{"d":{}}}}})", limits));
  CHECK_FALSE(json::parse_value(nested(100000)));
}

TEST_CASE("json: enforces the size limit") {
  json::Limits limits;
  limits.max_bytes = 10;
  CHECK(json::parse_object(R"({"a":"12"})", limits));
  const auto r = json::parse_object(R"({"a":"123"})", limits);
  REQUIRE_FALSE(r);
  CHECK(message_of(r).find("exceeds the limit of 10") != std::string::npos);
}

TEST_CASE("json: rejects invalid UTF-8 and lone surrogates") {
  for (const char* text :
       {"{\"a\":\"\xff\"}", "{\"a\":\"\xc3\"}", "{\"\xed\xa0\x80\":1}", R"({"a":"\ud800"})"}) {
    CAPTURE(text);
    const auto r = json::parse_object(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::malformed);
    CHECK(message_of(r).rfind("json: ", 0) == 0);
  }
  CHECK(json::parse_object("{\"a\":\"\xc3\xa9\"}"));
}

TEST_CASE("json: rejects syntax errors, trailing data and comments") {
  for (const char* text :
       {"", "{", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":1}{}", "{/*c*/\"a\":1}", "{'a':1}", "{\"a\":NaN}"}) {
    CAPTURE(text);
    const auto r = json::parse_object(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::malformed);
    CHECK(message_of(r).find("[json.exception") == std::string::npos);
  }
}

TEST_CASE("json: error messages never echo invalid input bytes") {
  for (const char* text : {"{\"a\":\"\xff\xfe\"}", "{\"a\":\"x\x01\"}", "{\"a\" 1}", "{\"\xc3\":1}"}) {
    CAPTURE(text);
    const auto r = json::parse_object(text);
    REQUIRE_FALSE(r);
    const auto& message = r.error().message;
    CHECK(message.find("last read") == std::string::npos);
    for (const char c : message) {
      CHECK(static_cast<unsigned char>(c) >= 0x20);
      CHECK(static_cast<unsigned char>(c) < 0x7f);
    }
    CHECK_NOTHROW((void)json::Json(message).dump());
  }
  const auto missing_colon = json::parse_object("{\"a\" 1}");
  CHECK(missing_colon.error().message.find("expected ':'") != std::string::npos);
  const auto control = json::parse_object("{\"a\\u0001\":1,\"a\\u0001\":2}");
  REQUIRE_FALSE(control);
  CHECK(control.error().message == "json: duplicate member name \"a\\x01\"");
}
