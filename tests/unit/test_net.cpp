// SPDX-License-Identifier: Apache-2.0
#include <claudegate/base/net.hpp>

#include <doctest/doctest.h>

using namespace claudegate;

TEST_CASE("net: is_loopback takes literal 127.0.0.0/8, ::1 and localhost only") {
  CHECK(net::is_loopback("127.0.0.1"));
  CHECK(net::is_loopback("127.1.2.3"));
  CHECK(net::is_loopback("::1"));
  CHECK(net::is_loopback("localhost"));
  CHECK_FALSE(net::is_loopback("0.0.0.0"));
  CHECK_FALSE(net::is_loopback("::"));
  CHECK_FALSE(net::is_loopback("10.0.0.1"));
  CHECK_FALSE(net::is_loopback("127example.com"));
  CHECK_FALSE(net::is_loopback("127.evil.example"));
}
