// SPDX-License-Identifier: Apache-2.0
#include "proxy/chunked_body.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>

using namespace claudegate::proxy;

namespace {

// Feed `body` to a ChunkedBody in pieces of `step` bytes: what it handed on, or the refusal's status.
std::pair<std::string, int> decode_chunked(std::string_view body, std::size_t step = 1000,
                                           std::uint64_t limit = 1000) {
  ChunkedBody chunked(limit, 100);
  std::string out;
  std::size_t at = 0;
  while (at < body.size() && !chunked.done()) {
    const auto used = chunked.feed(body.substr(at, step), out);
    if (!used) {
      return {out, used.error().status};
    }
    at += *used;
  }
  return {out, chunked.done() ? 0 : -1};
}

} // namespace

TEST_CASE("ChunkedBody decodes a sound body, stopping at its end") {
  const std::string body = "5;name=\"v\"\r\nhello\r\n0A \t; x\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n";
  for (const std::size_t step : {std::size_t{1}, std::size_t{3}, std::size_t{1000}}) {
    CAPTURE(step);
    const auto [out, status] = decode_chunked(body + "GET / HTTP/1.1\r\n", step);
    CHECK(status == 0);
    CHECK(out == "hello0123456789");
  }
  ChunkedBody chunked(100, 100);
  std::string out;
  CHECK(chunked.feed("0\r\n\r\nGET", out) == 5);
  CHECK(chunked.done());
}

TEST_CASE("ChunkedBody refuses bare LF, data without CRLF, bad sizes and bodies above the limit") {
  for (const char* bad :
       {"5\r\nhelloXX\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\n0\n\r\n", "5\r\nhello\r\n0\r\n\n", "5\r\nhello\r\n0\r\nx: t\n\r\n",
        "-5\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", "\r\n5\r\nhello\r\n0\r\n\r\n",
        "5 \r\nhello\r\n0\r\n\r\n", "0000000000000005\r\n", "5;a\nb\r\nhello\r\n0\r\n\r\n"}) {
    CAPTURE(bad);
    CHECK(decode_chunked(bad).second == 400);
  }
  CHECK(decode_chunked("3e9\r\n").second == 413);
  CHECK(decode_chunked("1000000000000000\r\n").second == 413);
  CHECK(decode_chunked("1f4\r\n" + std::string(500, 'a') + "\r\n1f5\r\n").second == 413);
  CHECK(decode_chunked("5\r\nhel").second == -1);
  std::string tiny;
  for (int i = 0; i < 300; ++i) {
    tiny += "1;padding\r\na\r\n";
  }
  CHECK(decode_chunked(tiny).second == 413); // 300 data bytes in 3900 bytes of framing
}
