// SPDX-License-Identifier: Apache-2.0
// The one JSON writer (json_write.cpp): append_quoted_lossy, append_compact
// and ObjectWriter write what nlohmann's dump() writes, byte for byte.
#include "claudegate/base/json.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

using namespace claudegate;
using json::Json;

namespace {

const std::vector<std::string> k_bad_utf8 = {"\xff",
                                             "a\xc3",
                                             "\xc0\xaf",
                                             "\xed\xa0\x80",
                                             "x\xf4\x90\x80\x80y",
                                             "\xe0\x80\xaf",
                                             "\xf0\x80\x80\xaf",
                                             "ok \x80 then \xe2\x82"};

std::string compact(const Json& value) {
  std::string out = "prefix:";
  json::append_compact(out, value);
  REQUIRE(out.starts_with("prefix:"));
  return out.substr(7);
}

} // namespace

TEST_CASE("json write: append_quoted_lossy is dump with replacement, for good and bad UTF-8") {
  std::vector<std::string> texts = {"", "plain", "quote\" back\\slash", std::string("nul\0\x1f\x7f\n", 6),
                                    "caf\xc3\xa9 \xf0\x9f\x98\x80"};
  texts.insert(texts.end(), k_bad_utf8.begin(), k_bad_utf8.end());
  for (const auto& text : texts) {
    CAPTURE(text);
    std::string out = "x";
    json::append_quoted_lossy(out, text);
    CHECK(out == "x" + Json(text).dump(-1, ' ', false, Json::error_handler_t::replace));
  }
}

TEST_CASE("json write: append_compact writes every kind of value as dump() does") {
  const std::vector<Json> values = {
      nullptr,
      true,
      false,
      0,
      -1,
      Json(std::numeric_limits<std::int64_t>::min()),
      Json(std::numeric_limits<std::uint64_t>::max()),
      1.5,
      -0.0,
      1e300,
      0.1,
      "text \"quoted\" \xe2\x82\xac\n",
      Json::object(),
      Json::array(),
      Json::parse(R"({"b":[1,2.25,{"z":null,"a":"\u0001"}],"a":{},"c":[[]],"\u00e9":true})"),
      Json::parse(R"([{"sub":"alice","roles":["r1","r2"],"exp":1795428900}])"),
  };
  for (const auto& value : values) {
    CAPTURE(value.dump());
    CHECK(compact(value) == value.dump());
  }
}

TEST_CASE("json write: append_compact throws dump()'s own error on invalid UTF-8") {
  for (const auto& bad : k_bad_utf8) {
    CAPTURE(bad);
    const Json document = {{"claim", {bad}}};
    std::string expected;
    try {
      (void)document.dump();
    } catch (const Json::type_error& e) {
      expected = e.what();
    }
    REQUIRE_FALSE(expected.empty());
    std::string out;
    CHECK_THROWS_WITH_AS(json::append_compact(out, document), expected.c_str(), Json::type_error);
  }
}

TEST_CASE("json write: ObjectWriter writes members in call order, compact or spaced") {
  const auto fill = [](json::ObjectWriter& object) {
    object.string("s", "v\"1");
    object.integer("n", -42);
    object.integer("none", std::optional<std::int64_t>());
    object.integer("some", std::optional<std::int64_t>(7));
    object.boolean("t", true);
    object.strings("list", {"a", "b"});
    object.strings("empty", {});
    object.value("doc", Json::parse(R"({"y":1.5,"x":[null]})"));
    object.raw("raw", "{}");
    object.string_lossy("lossy", "bad\xff");
    object.close();
    CHECK(object.valid());
  };
  std::string compact_text;
  json::ObjectWriter compact_object(compact_text);
  fill(compact_object);
  CHECK(compact_text
        == R"({"s":"v\"1","n":-42,"none":null,"some":7,"t":true,"list":["a","b"],"empty":[],)"
           R"("doc":{"x":[null],"y":1.5},"raw":{},"lossy":"bad)"
           "\xef\xbf\xbd\"}");

  std::string spaced_text = "row ";
  json::ObjectWriter spaced(spaced_text, json::ObjectWriter::Style::spaced);
  fill(spaced);
  CHECK(spaced_text.starts_with(R"(row {"s": "v\"1", "n": -42, "none": null, "some": 7, "t": true, )"
                                R"("list": ["a", "b"], "empty": [], "doc": {"x":[null],"y":1.5}, )"));

  std::string empty;
  json::ObjectWriter nothing(empty);
  nothing.close();
  CHECK(empty == "{}");
}

TEST_CASE("json write: ObjectWriter is no longer valid after invalid UTF-8 in a name or string") {
  for (int where = 0; where < 3; ++where) {
    CAPTURE(where);
    std::string out;
    json::ObjectWriter object(out);
    object.string("fine", "fine");
    if (where == 0) {
      object.string("bad\xc3", "v");
    } else if (where == 1) {
      object.string("k", "\xed\xa0\x80");
    } else {
      object.strings("k", {"ok", "\x80"});
    }
    object.string("later", "fine");
    CHECK_FALSE(object.valid());
  }
}

TEST_CASE("json write: an object written by ObjectWriter matches the document's dump in sorted order") {
  const Json document = Json::parse(R"({"alg":"ES256","kid":"k\u00e9","typ":"at+jwt","n":[1,-2]})");
  std::string out;
  json::ObjectWriter object(out);
  for (const auto& [name, value] : document.items()) {
    object.value(name, value);
  }
  object.close();
  CHECK(out == document.dump());
}
