// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/anthropic_error.hpp"

#include "claudegate/base/json.hpp"

#include <array>

namespace claudegate::proxy {

namespace {

constexpr std::string_view k_base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::size_t k_request_id_chars = 24;

// Bytes at or above this would make `byte % 62` favour the first characters.
constexpr unsigned k_unbiased_limit = 256 - 256 % 62;

} // namespace

std::string error_body(std::string_view type, std::string_view message, std::string_view request_id) {
  const json::Json body = {
      {"type", "error"},
      {"error", {{"type", std::string(type)}, {"message", std::string(message)}}},
      {"request_id", std::string(request_id)},
  };
  return body.dump(-1, ' ', false, json::Json::error_handler_t::replace);
}

std::string new_request_id(RandomSource& rng) {
  std::string id = "req_";
  std::array<unsigned char, 32> pool{};
  while (id.size() < 4 + k_request_id_chars) {
    rng.fill(pool);
    for (const unsigned char byte : pool) {
      if (byte < k_unbiased_limit && id.size() < 4 + k_request_id_chars) {
        id += k_base62[byte % 62];
      }
    }
  }
  return id;
}

} // namespace claudegate::proxy
