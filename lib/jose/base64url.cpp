// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/base64url.hpp"

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

constexpr std::uint32_t k_invalid_bit = 0x80; // set in k_invalid, clear in every sextet

std::uint32_t sextet_at(std::string_view text, std::size_t i) {
  return k_decode_table[static_cast<unsigned char>(text[i])];
}

// Offset of the first character outside the alphabet at or after `from` (one is known to exist).
std::size_t first_invalid(std::string_view text, std::size_t from) {
  while (from < text.size() && sextet_at(text, from) != k_invalid) {
    ++from;
  }
  return from;
}

// Decode the last 2 or 3 characters (`tail`, at `offset` in the text) into `out`.
Result<void> decode_tail(std::string_view tail, char* out, std::size_t offset) {
  std::uint32_t group = 0;
  for (std::size_t i = 0; i < tail.size(); ++i) {
    const std::uint32_t value = sextet_at(tail, i);
    if (value == k_invalid) {
      return invalid_character(offset + i);
    }
    group |= value << (18 - 6 * i);
  }
  // Non-zero leftover bits would let two encodings decode to the same bytes.
  const std::uint32_t used = tail.size() == 2 ? 0xff0000 : 0xffff00;
  if (!tail.empty() && (group & ~used) != 0) {
    return fail(Errc::malformed, "base64url: non-zero trailing bits");
  }
  if (tail.size() >= 2) {
    out[0] = static_cast<char>(group >> 16);
  }
  if (tail.size() == 3) {
    out[1] = static_cast<char>((group >> 8) & 0xff);
  }
  return {};
}

} // namespace

std::string encode(std::string_view bytes) {
  std::string out((bytes.size() * 4 + 2) / 3, '\0');
  char* o = out.data();
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = byte_at(bytes, i) << 16 | byte_at(bytes, i + 1) << 8 | byte_at(bytes, i + 2);
    o[0] = sextet(group, 18);
    o[1] = sextet(group, 12);
    o[2] = sextet(group, 6);
    o[3] = sextet(group, 0);
    o += 4;
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    const std::uint32_t group = byte_at(bytes, i) << 16 | (rest == 2 ? byte_at(bytes, i + 1) << 8 : 0);
    *o++ = sextet(group, 18);
    *o++ = sextet(group, 12);
    if (rest == 2) {
      *o = sextet(group, 6);
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
  char* o = out.data();
  std::size_t i = 0;
  for (; i + 4 <= text.size(); i += 4, o += 3) {
    // An invalid character sets bit 0x80 of its table entry, so the OR of four flags any.
    const std::uint32_t a = sextet_at(text, i);
    const std::uint32_t b = sextet_at(text, i + 1);
    const std::uint32_t c = sextet_at(text, i + 2);
    const std::uint32_t d = sextet_at(text, i + 3);
    if (((a | b | c | d) & k_invalid_bit) != 0) {
      return invalid_character(first_invalid(text, i));
    }
    const std::uint32_t group = a << 18 | b << 12 | c << 6 | d;
    o[0] = static_cast<char>(group >> 16);
    o[1] = static_cast<char>((group >> 8) & 0xff);
    o[2] = static_cast<char>(group & 0xff);
  }
  if (auto tail = decode_tail(text.substr(i), o, i); !tail) {
    return propagate(tail);
  }
  return out;
}

} // namespace claudegate::base64url
