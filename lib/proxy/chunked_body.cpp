// SPDX-License-Identifier: Apache-2.0
#include "chunked_body.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <utility>

namespace claudegate::proxy {

namespace {

int chunk_size_digit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

// HTAB, SP, visible characters and obs-text (RFC 9110 §5.5), as in extensions and trailers.
bool is_extension_byte(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte == '\t' || (byte >= 0x20 && byte != 0x7f);
}

Rejection bad_chunk(std::string_view why) {
  return {
      400, "invalid_request_error",
      fmt::format("malformed chunked request body ({}); send each chunk as HEX-SIZE CRLF DATA CRLF and end "
                  "with 0 CRLF CRLF",
                  why),
      std::nullopt, false};
}

Rejection too_big(std::uint64_t limit) {
  return {413, "request_too_large", fmt::format("request body is larger than the limit of {} bytes", limit),
          std::nullopt, false};
}

} // namespace

std::expected<std::size_t, Rejection> ChunkedBody::feed(std::string_view in, std::string& out) {
  std::size_t used = 0;
  while (used < in.size() && m_state != State::done) {
    if (m_state == State::data) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(m_left, in.size() - used));
      out.append(in.substr(used, n));
      m_left -= n;
      used += n;
      m_state = m_left == 0 ? State::data_cr : State::data;
      continue;
    }
    if (auto bad = step(in[used])) {
      return std::unexpected(*bad);
    }
    ++used;
  }
  return used;
}

std::optional<Rejection> ChunkedBody::step(char c) {
  if (c != '\r' && c != '\n' && ++m_line > m_max_line) {
    return bad_chunk(fmt::format("a chunk or trailer line longer than {} bytes", m_max_line));
  }
  // Chunk framing costs as much to read as data: a body of one-byte chunks
  // with long extensions may not take longer to send than the limit allows.
  if (++m_framing > m_max_body) {
    return too_big(m_max_body);
  }
  switch (m_state) {
  case State::size:
    return size_byte(c);
  case State::size_blank:
    if (c == ';') {
      m_state = State::extension;
    } else if (c != ' ' && c != '\t') {
      return bad_chunk("blanks after a chunk size not followed by ;");
    }
    return std::nullopt;
  case State::extension:
    if (c == '\r') {
      m_state = State::size_lf;
    } else if (!is_extension_byte(c)) {
      return bad_chunk("a control byte or bare LF in a chunk extension");
    }
    return std::nullopt;
  case State::size_lf:
    return c == '\n' ? end_size_line() : bad_chunk("a chunk size line not ended by CRLF");
  case State::data_cr:
    m_state = State::data_lf;
    return c == '\r' ? std::nullopt : std::optional(bad_chunk("chunk data not followed by CRLF"));
  case State::data_lf:
    if (c != '\n') {
      return bad_chunk("chunk data not followed by CRLF");
    }
    m_state = State::size;
    m_line = 0;
    return std::nullopt;
  default:
    return trailer_byte(c);
  }
}

std::optional<Rejection> ChunkedBody::size_byte(char c) {
  const int digit = chunk_size_digit(c);
  if (digit >= 0) {
    if (++m_digits > 15) {
      return bad_chunk("a chunk size of more than 15 hex digits");
    }
    m_size = m_size * 16 + static_cast<std::uint64_t>(digit);
    if (m_total + m_size > m_max_body) {
      return too_big(m_max_body);
    }
    return std::nullopt;
  }
  if (m_digits == 0) {
    return bad_chunk(c == '\n' ? "a bare LF where a chunk size belongs" : "a chunk size that is not hex");
  }
  if (c == ';' || c == ' ' || c == '\t' || c == '\r') {
    m_state = c == ';' ? State::extension : c == '\r' ? State::size_lf : State::size_blank;
    return std::nullopt;
  }
  return bad_chunk(c == '\n' ? "a chunk size line ended by a bare LF" : "a chunk size that is not hex");
}

std::optional<Rejection> ChunkedBody::end_size_line() {
  m_line = 0;
  m_digits = 0;
  if (m_size == 0) {
    m_state = State::trailer;
    return std::nullopt;
  }
  m_total += m_size;
  m_left = std::exchange(m_size, 0);
  m_state = State::data;
  return std::nullopt;
}

// Trailer fields are read (each line ended by CRLF) and dropped; the empty line ends the body.
std::optional<Rejection> ChunkedBody::trailer_byte(char c) {
  if (m_state == State::trailer_lf) {
    if (c != '\n') {
      return bad_chunk("a trailer line not ended by CRLF");
    }
    m_state = m_line == 0 ? State::done : State::trailer;
    m_line = 0;
    return std::nullopt;
  }
  if (c == '\r') {
    m_state = State::trailer_lf;
    return std::nullopt;
  }
  if (++m_trailers > 16 * m_max_line || !is_extension_byte(c)) {
    return bad_chunk("a control byte, bare LF or too many bytes in the trailer fields");
  }
  return std::nullopt;
}

} // namespace claudegate::proxy
