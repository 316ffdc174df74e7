// SPDX-License-Identifier: Apache-2.0
#include <claudegate/proxy/server.hpp>

#include <doctest/doctest.h>

using namespace claudegate;

TEST_CASE("proxy server: parse_listen splits HOST:PORT") {
  auto listen = proxy::parse_listen("127.0.0.1:8787");
  REQUIRE(listen);
  CHECK(listen->host == "127.0.0.1");
  CHECK(listen->port == 8787);
  listen = proxy::parse_listen("[::1]:0");
  REQUIRE(listen);
  CHECK(listen->host == "::1");
  CHECK(listen->port == 0);
  listen = proxy::parse_listen("localhost:9000");
  REQUIRE(listen);
  CHECK(listen->host == "localhost");
  CHECK(listen->port == 9000);
}

TEST_CASE("proxy server: parse_listen refuses what is not HOST:PORT") {
  for (const char* bad :
       {"8787", ":8787", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", "h:-1", "h:1x"}) {
    CAPTURE(bad);
    auto parsed = proxy::parse_listen(bad);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == Errc::config);
  }
}

TEST_CASE("proxy server: ServeOptions start from the [serve] defaults") {
  const proxy::ServeOptions options;
  const config::ServeConfig serve;
  CHECK(options.host + ":" + std::to_string(options.port) == serve.listen);
  CHECK(options.upstream == serve.upstream);
  CHECK(options.body_limit == serve.body_limit);
  CHECK(options.read_timeout == serve.read_timeout);
  CHECK(options.upstream_timeout == serve.upstream_timeout);
  CHECK(options.threads == serve.threads);
  CHECK(options.jwks_plan == serve.jwks_plan);
}
