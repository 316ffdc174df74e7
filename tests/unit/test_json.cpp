// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/json.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace claudegate;

namespace {

std::string nested(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[')
         + std::string(static_cast<std::size_t>(depth), ']');
}

std::string message_of(const Result<json::Json>& r) {
  return r ? std::string() : r.error().message;
}

// Equal values with equal types throughout (Json's == treats 1, 1u and 1.0 as equal).
bool same_document(const json::Json& a, const json::Json& b) {
  if (a.type() != b.type() || a != b) {
    return false;
  }
  if (a.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!same_document(*it, b.at(it.key()))) {
        return false;
      }
    }
  }
  if (a.is_array()) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same_document(a[i], b[i])) {
        return false;
      }
    }
  }
  return true;
}

// What nlohmann's own parser makes of `text`, or nullopt when it refuses it.
std::optional<json::Json> reference_parse(const std::string& text) {
  try {
    return json::Json::parse(text);
  } catch (const json::Json::exception&) {
    return std::nullopt;
  }
}

// parse_value (fast reader, else the strict SAX builder) against nlohmann's
// parser: whatever we accept, nlohmann accepts as the same document; whatever
// it refuses, we refuse. (We also refuse duplicates, depth and a leading
// byte order mark, which it takes.)
void check_against_reference(const std::string& text) {
  CAPTURE(text);
  const auto ours = json::parse_value(text);
  const auto reference = reference_parse(text);
  if (ours) {
    REQUIRE(reference);
    CHECK(same_document(*ours, *reference));
  } else {
    const auto why = message_of(ours);
    CHECK((!reference || why.find("duplicate") != std::string::npos
           || why.find("byte order mark") != std::string::npos));
  }
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

TEST_CASE("json: a leading UTF-8 byte order mark is malformed, whichever reader looks first") {
  const std::string bom = "\xEF\xBB\xBF";
  // A plain document (the fast reader's) and one only nlohmann reads (a \u escape).
  for (const std::string body : {R"({"a":1})", R"({"a":"\u00e9"})"}) {
    CAPTURE(body);
    const auto r = json::parse_object(bom + body);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::malformed);
    CHECK(message_of(r).find("byte order mark") != std::string::npos);
    CHECK_FALSE(json::parse_value(bom + body));
    CHECK(json::parse_object(body));
  }
  CHECK_FALSE(json::parse_value(bom + "1"));
  // Inside a string it is an ordinary character (U+FEFF).
  CHECK(json::parse_object("{\"a\":\"" + bom + "\"}"));
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

TEST_CASE("json: every document parses as nlohmann parses it, with the same types") {
  const std::vector<std::string> valid = {
      R"({"iss":"claudegate","sub":"alice","aud":["a","b"],"iat":1795428000,"exp":-3,"n":null})",
      R"( { "a" : [ true , false , null , { } , [ ] ] } )",
      "{\"t\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
      R"({"u":"\u00e9\ud83d\ude00","z":"\u0000"})",
      "{\"utf8\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
      R"([0,-0,1,-1,123456789012345678,-123456789012345678,1234567890123456789,-1234567890123456789])",
      R"([12345678901234567890,123456789012345678901234,-9223372036854775808,18446744073709551615])",
      R"([1.5,-0.0,1e3,1E-3,2.5e+10,0.1])",
      "\xef\xbb\xbf{\"bom\":1}",
      "\t\r\n[\"x\"]\n",
      R"("just a string")",
      "42",
      R"({"a":{"b":{"c":[{"d":[1,[2,[3]]]}]}}})",
  };
  for (const auto& text : valid) {
    REQUIRE(reference_parse(text));
    check_against_reference(text);
  }
}

TEST_CASE("json: malformed documents fail as they did, whichever reader looks first") {
  const std::vector<std::string> invalid = {
      "01",           "-",          "-a",    "1.",        "1e",        ".5",
      "+1",           "[1,]",       "[1 2]", "{\"a\"}",   "{\"a\" 1}", "{\"a\":}",
      "{,}",          "{\"a\":1,}", "tru",   "nul",       "falsey",    "[",
      "\"abc",        "\"a\\x\"",   "\"\\",  "\"\\u12\"", "\"a\x01\"", "\"\xff\"",
      "\"\xc0\xaf\"", "{\"a\":1}}", "[]]",   "",          " ",         "{\"a\":1 \"b\":2}"};
  for (const auto& text : invalid) {
    CAPTURE(text);
    CHECK_FALSE(reference_parse(text));
    const auto r = json::parse_value(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::malformed);
    CHECK(message_of(r).rfind("json: ", 0) == 0);
  }
}

TEST_CASE("json: random mutations of a token payload parse as nlohmann parses them") {
  const std::string seed =
      R"({"iss":"claudegate","sub":"a\"b","aud":["x","y"],"iat":1795428000,"exp":-17,"ok":true,"n":null})";
  const std::string alphabet = "{}[]\":,\\/ -+.eE0123456789tfnrulasbu\x01\x7f\x80\xc3\xa9\xff";
  std::mt19937 random(7); // fixed seed: the same cases every run
  for (int round = 0; round < 3000; ++round) {
    std::string text = seed;
    const int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits; ++e) {
      const auto at = random() % text.size();
      const char c = alphabet[random() % alphabet.size()];
      switch (random() % 3) {
      case 0:
        text[at] = c;
        break;
      case 1:
        text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c);
        break;
      default:
        text.erase(at, 1);
      }
    }
    check_against_reference(text);
  }
}

TEST_CASE("json: append_quoted escapes as nlohmann's dump does and refuses invalid UTF-8") {
  const std::vector<std::string> texts = {"",
                                          "plain",
                                          "quote\" back\\slash /",
                                          std::string("nul\0ctl\x01\x1f\x7f\b\f\n\r\t", 15),
                                          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
                                          "</script>\u2028"};
  for (const auto& text : texts) {
    CAPTURE(text);
    std::string out = "x";
    REQUIRE(json::append_quoted(out, text));
    CHECK(out == "x" + json::Json(text).dump());
    CHECK(json::Json::parse(out.substr(1)) == text);
  }
  for (const std::string bad : {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x88\x80\x80\x80", "\x80"}) {
    CAPTURE(bad);
    std::string out;
    CHECK_FALSE(json::append_quoted(out, bad));
    CHECK_THROWS((void)json::Json(bad).dump());
  }
}
