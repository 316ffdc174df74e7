// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/base64url.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace claudegate;

TEST_CASE("base64url: encodes RFC 4648 test vectors without padding") {
  CHECK(base64url::encode("") == "");
  CHECK(base64url::encode("f") == "Zg");
  CHECK(base64url::encode("fo") == "Zm8");
  CHECK(base64url::encode("foo") == "Zm9v");
  CHECK(base64url::encode("foob") == "Zm9vYg");
  CHECK(base64url::encode("fooba") == "Zm9vYmE");
  CHECK(base64url::encode("foobar") == "Zm9vYmFy");
}

TEST_CASE("base64url: uses the URL-safe alphabet") {
  CHECK(base64url::encode(std::string("\xfb\xff\xbf", 3)) == "-_-_");
  const auto decoded = base64url::decode("-_-_");
  REQUIRE(decoded);
  CHECK(*decoded == std::string("\xfb\xff\xbf", 3));
}

TEST_CASE("base64url: round-trips every byte value at every length") {
  std::string bytes;
  for (int i = 0; i < 256; ++i) {
    bytes.push_back(static_cast<char>(i));
  }
  for (std::size_t n = 0; n <= bytes.size(); ++n) {
    const auto slice = bytes.substr(0, n);
    const auto decoded = base64url::decode(base64url::encode(slice));
    REQUIRE(decoded);
    CHECK(*decoded == slice);
  }
}

TEST_CASE("base64url: decodes RFC 7515 header example") {
  const auto decoded = base64url::decode("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9");
  REQUIRE(decoded);
  CHECK(*decoded == "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}");
}

TEST_CASE("base64url: rejects padding, whitespace and the standard alphabet") {
  for (const char* bad : {"Zg==", "Zm8=", "Zm9v\n", " Zm9v", "Zm 9v", "Zm9v+g", "ab/c", "Zm9\t", "Zg\r\n"}) {
    CAPTURE(bad);
    const auto decoded = base64url::decode(bad);
    REQUIRE_FALSE(decoded);
    CHECK(decoded.error().code == Errc::malformed);
  }
}

TEST_CASE("base64url: rejects impossible lengths") {
  for (const char* bad : {"A", "Zm9vY", "Zm9vYmFyZ"}) {
    CAPTURE(bad);
    CHECK_FALSE(base64url::decode(bad));
  }
}

TEST_CASE("base64url: rejects non-zero trailing bits") {
  CHECK(base64url::decode("Zg"));
  CHECK_FALSE(base64url::decode("Zh"));
  CHECK_FALSE(base64url::decode("Zv"));
  CHECK(base64url::decode("Zm8"));
  CHECK_FALSE(base64url::decode("Zm9"));
  CHECK_FALSE(base64url::decode("Zm-"));
}

TEST_CASE("base64url: rejects NUL and high bytes") {
  CHECK_FALSE(base64url::decode(std::string("Zm\0v", 4)));
  CHECK_FALSE(base64url::decode("Zm\xc3\xa9v"));
}
