// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/text.hpp"

#include <doctest/doctest.h>

#include <string_view>
#include <vector>

using namespace claudegate;
using Items = std::vector<std::string_view>;

TEST_CASE("text: lower changes ASCII letters only") {
  CHECK(text::lower("Transfer-Encoding: CHUNKED") == "transfer-encoding: chunked");
  CHECK(text::lower("") == "");
  CHECK(text::lower("a1-_\xc3\x89") == "a1-_\xc3\x89");
}

TEST_CASE("text: trim drops the given blanks at both ends only") {
  CHECK(text::trim(" \tmax-age=5 \t") == "max-age=5");
  CHECK(text::trim("a b") == "a b");
  CHECK(text::trim(" \t ") == "");
  CHECK(text::trim("") == "");
  CHECK(text::trim("\r\nkey\n") == "\r\nkey\n"); // by default only spaces and tabs
  CHECK(text::trim("\r\n key \n", " \t\r\n") == "key");
  CHECK(text::trim("\tclose ", " ") == "\tclose");
}

TEST_CASE("text: split keeps empty items") {
  CHECK(text::split("a,b", ',') == Items{"a", "b"});
  CHECK(text::split("a,,b,", ',') == Items{"a", "", "b", ""});
  CHECK(text::split("", '|') == Items{""});
  CHECK(text::split("one", '|') == Items{"one"});
}

TEST_CASE("text: words drops empty items") {
  CHECK(text::words("  read  write ") == Items{"read", "write"});
  CHECK(text::words("").empty());
  CHECK(text::words("   ").empty());
  CHECK(text::words("a,,b", ',') == Items{"a", "b"});
}
