// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/anthropic_error.hpp"

#include "claudegate/base/json.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <string>

using namespace claudegate;
using namespace claudegate::proxy;

namespace {

// Counts up from `next`, so output is predictable and includes biased bytes.
class CountingRandom final : public RandomSource {
public:
  void fill(std::span<unsigned char> out) override {
    for (auto& byte : out) {
      byte = static_cast<unsigned char>(m_next++);
    }
  }

private:
  unsigned m_next = 240;
};

} // namespace

TEST_CASE("anthropic_error: error_body is Anthropic's envelope") {
  const auto body = json::Json::parse(error_body("rate_limit_error", "Daily quota \"free\" used", "req_abc"));
  CHECK(body
        == json::Json::parse(R"({"type":"error","error":{"type":"rate_limit_error",)"
                             R"("message":"Daily quota \"free\" used"},"request_id":"req_abc"})"));
}

TEST_CASE("anthropic_error: error_body survives invalid UTF-8") {
  const std::string body = error_body("invalid_request_error", "bad \xff byte", "req_x");
  const auto parsed = json::Json::parse(body);
  CHECK(parsed["error"]["message"].get<std::string>().find("bad ") == 0);
}

TEST_CASE("anthropic_error: request ids are req_ plus 24 base62 characters") {
  SystemRandom rng;
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string id = new_request_id(rng);
    REQUIRE(id.size() == 28);
    CHECK(id.substr(0, 4) == "req_");
    CHECK(std::all_of(id.begin() + 4, id.end(),
                      [](char c) { return std::isalnum(static_cast<unsigned char>(c)); }));
    seen.insert(id);
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("anthropic_error: request ids skip bytes that would bias the alphabet") {
  CountingRandom rng; // 240..255 are rejected (248..255) or kept (240..247), then 0..
  const std::string id = new_request_id(rng);
  CHECK(id == "req_stuvwxyz0123456789ABCDEF");
}
