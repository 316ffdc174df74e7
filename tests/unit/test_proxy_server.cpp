// SPDX-License-Identifier: Apache-2.0
#include <claudegate/proxy/server.hpp>

#include <doctest/doctest.h>

using namespace claudegate;

TEST_CASE("proxy server: parse_listen splits HOST:PORT") {
  proxy::ServeOptions options;
  REQUIRE(proxy::parse_listen("127.0.0.1:8787", options));
  CHECK(options.host == "127.0.0.1");
  CHECK(options.port == 8787);
  REQUIRE(proxy::parse_listen("[::1]:0", options));
  CHECK(options.host == "::1");
  CHECK(options.port == 0);
  REQUIRE(proxy::parse_listen("localhost:9000", options));
  CHECK(options.host == "localhost");
}

TEST_CASE("proxy server: parse_listen refuses what is not HOST:PORT") {
  proxy::ServeOptions options;
  for (const char* bad :
       {"8787", ":8787", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", "h:-1", "h:1x"}) {
    CAPTURE(bad);
    auto parsed = proxy::parse_listen(bad, options);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == Errc::config);
  }
}
