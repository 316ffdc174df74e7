// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/duration.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

using namespace claudegate;

TEST_CASE("duration: parses each unit and bare seconds") {
  CHECK(duration::parse("90s").value() == 90);
  CHECK(duration::parse("15m").value() == 900);
  CHECK(duration::parse("12h").value() == 43200);
  CHECK(duration::parse("7d").value() == 604800);
  CHECK(duration::parse("3600").value() == 3600);
  CHECK(duration::parse("0").value() == 0);
  CHECK(duration::parse("0s").value() == 0);
}

TEST_CASE("duration: parses combined units, largest first") {
  CHECK(duration::parse("1h30m").value() == 5400);
  CHECK(duration::parse("1d3h").value() == 97200);
  CHECK(duration::parse("3m12s").value() == 192);
}

TEST_CASE("duration: rejects malformed input with the accepted forms") {
  for (const char* text :
       {"", "-5", "-5m", "5x", "15min", "m", "1h30", "30m1h", "1h1h", " 5m", "5 m", "1.5h", "+5"}) {
    CAPTURE(text);
    const auto parsed = duration::parse(text);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == Errc::config);
    CHECK(parsed.error().message.find("90s, 15m, 12h, 7d") != std::string::npos);
  }
}

TEST_CASE("duration: names the problem") {
  CHECK(duration::parse("-5m").error().message.find("negative") != std::string::npos);
  CHECK(duration::parse("15min").error().message.find("unknown unit \"min\"") != std::string::npos);
  CHECK(duration::parse("").error().message.find("empty") != std::string::npos);
}

TEST_CASE("duration: rejects overflow and absurd lengths") {
  CHECK_FALSE(duration::parse("99999999999999999999"));
  CHECK_FALSE(duration::parse("9223372036854775807d"));
  CHECK_FALSE(duration::parse("106751991167300d"));
  CHECK_FALSE(duration::parse("36501d"));
  CHECK(duration::parse("36500d").value() == 36500LL * 86400);
}

TEST_CASE("duration: formats with at most two adjacent units") {
  CHECK(duration::format(0) == "0s");
  CHECK(duration::format(59) == "59s");
  CHECK(duration::format(192) == "3m12s");
  CHECK(duration::format(900) == "15m");
  CHECK(duration::format(7200) == "2h");
  CHECK(duration::format(97200) == "1d3h");
  CHECK(duration::format(90061) == "1d1h");
  CHECK(duration::format(86401) == "1d");
  CHECK(duration::format(-192) == "-3m12s");
  CHECK_FALSE(duration::format(std::numeric_limits<std::int64_t>::min()).empty());
}

TEST_CASE("duration: formatted durations parse back") {
  for (std::int64_t seconds : {0LL, 1LL, 59LL, 60LL, 192LL, 3600LL, 5400LL, 86400LL, 97200LL}) {
    CAPTURE(seconds);
    CHECK(duration::parse(duration::format(seconds)).value() == seconds);
  }
}

TEST_CASE("duration: parse_time accepts Unix seconds") {
  CHECK(duration::parse_time("0").value() == 0);
  CHECK(duration::parse_time("1795428000").value() == 1795428000);
}

TEST_CASE("duration: parse_time accepts RFC 3339 in UTC") {
  CHECK(duration::parse_time("1970-01-01T00:00:00Z").value() == 0);
  CHECK(duration::parse_time("2026-11-23T10:00:00Z").value() == 1795428000);
  CHECK(duration::parse_time("2026-11-23t10:00:00z").value() == 1795428000);
  CHECK(duration::parse_time("2026-11-23 10:00:00Z").value() == 1795428000);
  CHECK(duration::parse_time("2024-02-29T23:59:59Z").value() == 1709251199);
  CHECK(duration::parse_time("1969-12-31T23:59:59Z").value() == -1);
}

TEST_CASE("duration: parse_time applies offsets and truncates fractions") {
  CHECK(duration::parse_time("2026-11-23T11:00:00+01:00").value() == 1795428000);
  CHECK(duration::parse_time("2026-11-23T04:30:00-05:30").value() == 1795428000);
  CHECK(duration::parse_time("2026-11-23T10:00:00.999Z").value() == 1795428000);
  CHECK(duration::parse_time("2026-11-23T10:00:00.123456789+00:00").value() == 1795428000);
}

TEST_CASE("duration: parse_time takes a bare date as midnight UTC") {
  CHECK(duration::parse_time("2026-11-23").value() == 1795392000);
}

TEST_CASE("duration: parse_time rejects malformed times") {
  for (const char* text : {"", "-1", "2026-11-23T10:00:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                           "2026-11-23T24:00:00Z", "2026-11-23T10:60:00Z", "2026-11-23T10:00:00.Z",
                           "2026-11-23T10:00:00+1:00", "2026-11-23T10:00:00+01:00x", "26-11-23T10:00:00Z",
                           "2026-11-23X10:00:00Z", "99999999999999999999", "yesterday"}) {
    CAPTURE(text);
    const auto parsed = duration::parse_time(text);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == Errc::config);
    CHECK(parsed.error().message.find("RFC 3339") != std::string::npos);
  }
}

TEST_CASE("duration: format_time writes RFC 3339 UTC") {
  CHECK(duration::format_time(0) == "1970-01-01T00:00:00Z");
  CHECK(duration::format_time(1795428000) == "2026-11-23T10:00:00Z");
  CHECK(duration::format_time(1709251199) == "2024-02-29T23:59:59Z");
  CHECK(duration::format_time(-1) == "1969-12-31T23:59:59Z");
  CHECK(duration::format_time(253402300799) == "9999-12-31T23:59:59Z");
}

TEST_CASE("duration: format_time shows raw seconds outside four-digit years") {
  CHECK(duration::format_time(253402300800) == "253402300800");
  CHECK(duration::format_time(std::numeric_limits<std::int64_t>::max()) == "9223372036854775807");
}

TEST_CASE("duration: format_time and parse_time round-trip") {
  for (UnixSeconds t : {0LL, 1LL, 951782400LL, 1795428000LL, 4102444800LL}) {
    CAPTURE(t);
    CHECK(duration::parse_time(duration::format_time(t)).value() == t);
  }
}
