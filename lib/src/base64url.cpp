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

std::uint32_t byte_at(std::string_view bytes, std::size_t i) {
  return static_cast<unsigned char>(bytes[i]);
}

char sextet(std::uint32_t group, int shift) {
  return k_alphabet[(group >> shift) & 0x3f];
}

// Bytes that `length` characters (length % 4 != 1) decode to.
std::size_t decoded_size(std::size_t length) {
  return length / 4 * 3 + (length % 4 == 0 ? 0 : length % 4 - 1);
}

std::unexpected<Error> invalid_character(std::size_t offset) {
  return fail(Errc::malformed, "base64url: invalid character at offset " + std::to_string(offset)
                                   + " (padding, whitespace and '+' '/' are refused)");
}

} // namespace

std::string encode(std::string_view bytes) {
  std::string out((bytes.size() * 4 + 2) / 3, '\0');
  std::size_t o = 0;
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = byte_at(bytes, i) << 16 | byte_at(bytes, i + 1) << 8 | byte_at(bytes, i + 2);
    for (const int shift : {18, 12, 6, 0}) {
      out[o++] = sextet(group, shift);
    }
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    const std::uint32_t group = byte_at(bytes, i) << 16 | (rest == 2 ? byte_at(bytes, i + 1) << 8 : 0);
    out[o++] = sextet(group, 18);
    out[o++] = sextet(group, 12);
    if (rest == 2) {
      out[o++] = sextet(group, 6);
    }
  }
  return out;
}

Result<std::string> decode(std::string_view text) {
  // One leftover character carries only 6 bits: no byte can end there.
  if (text.size() % 4 == 1) {
    return fail(Errc::malformed, "base64url: impossible length " + std::to_string(text.size()));
  }
  std::string out(decoded_size(text.size()), '\0');
  std::size_t written = 0;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::uint8_t value = k_decode_table[static_cast<unsigned char>(text[i])];
    if (value == k_invalid) {
      return invalid_character(i);
    }
    buffer = (buffer << 6) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[written++] = static_cast<char>((buffer >> bits) & 0xff);
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
