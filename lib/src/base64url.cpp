// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base64url.hpp"

#include <array>
#include <cstdint>

namespace claudegate::base64url {

namespace {

constexpr std::string_view k_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::uint8_t k_invalid = 0xff;

// Reverse of k_alphabet; every byte outside it (padding, '+', '/', space) is k_invalid.
constexpr std::array<std::uint8_t, 256> make_decode_table() {
  std::array<std::uint8_t, 256> table{};
  table.fill(k_invalid);
  for (std::size_t i = 0; i < k_alphabet.size(); ++i) {
    table[static_cast<unsigned char>(k_alphabet[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}

constexpr std::array<std::uint8_t, 256> k_decode_table = make_decode_table();

char sextet(std::uint32_t group, int shift) {
  return k_alphabet[(group >> shift) & 0x3f];
}

} // namespace

std::string encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16
                                | static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8
                                | static_cast<unsigned char>(bytes[i + 2]);
    out += {sextet(group, 18), sextet(group, 12), sextet(group, 6), sextet(group, 0)};
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t group = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    out += {sextet(group, 18), sextet(group, 12)};
  } else if (rest == 2) {
    const std::uint32_t group = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16
                                | static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += {sextet(group, 18), sextet(group, 12), sextet(group, 6)};
  }
  return out;
}

Result<std::string> decode(std::string_view text) {
  // One leftover character carries only 6 bits: no byte can end there.
  if (text.size() % 4 == 1) {
    return fail(Errc::malformed, "base64url: impossible length " + std::to_string(text.size()));
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::uint8_t value = k_decode_table[static_cast<unsigned char>(text[i])];
    if (value == k_invalid) {
      return fail(Errc::malformed, "base64url: invalid character at offset " + std::to_string(i)
                                       + " (padding, whitespace and '+' '/' are refused)");
    }
    buffer = (buffer << 6) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
      buffer &= (1u << bits) - 1;
    }
  }
  // Non-zero leftover bits would let two encodings decode to the same bytes.
  if (buffer != 0) {
    return fail(Errc::malformed, "base64url: non-zero trailing bits");
  }
  return out;
}

} // namespace claudegate::base64url
