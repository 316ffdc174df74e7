// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "wire.hpp"

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

// Chunked request bodies (RFC 9112 §7.1), read strictly: a request-smuggling guard.
namespace claudegate::proxy {

// A strict decoder of a chunked request body (RFC 9112 §7.1): hex size,
// optional extensions, CRLF, data, CRLF, ..., last chunk, trailer fields,
// CRLF. It hands on the data (extensions and trailers are dropped). Bare
// LF, data not followed by CRLF, a bad size or a body above `max_body`
// bytes are refused.
class ChunkedBody {
public:
  ChunkedBody(std::uint64_t max_body, std::size_t max_line) : m_max_body(max_body), m_max_line(max_line) {}

  // Read from `in` up to the end of the body, appending the chunks' data
  // to `out`: the bytes of `in` read, or the rejection (400, 413).
  std::expected<std::size_t, Rejection> feed(std::string_view in, std::string& out);
  // True once the last chunk and the trailer section were read.
  bool done() const { return m_state == State::done; }

private:
  enum class State {
    size,
    size_blank,
    extension,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer,
    trailer_lf,
    done
  };
  std::optional<Rejection> step(char c);
  std::optional<Rejection> size_byte(char c);
  std::optional<Rejection> end_size_line();
  std::optional<Rejection> trailer_byte(char c);

  State m_state = State::size;
  std::uint64_t m_max_body;
  std::size_t m_max_line;
  std::uint64_t m_size = 0;    // of the chunk being read
  std::size_t m_digits = 0;    // of its size
  std::uint64_t m_left = 0;    // its data bytes still to come
  std::uint64_t m_total = 0;   // data bytes so far
  std::size_t m_line = 0;      // bytes of the current size or trailer line
  std::size_t m_trailers = 0;  // trailer bytes so far
  std::uint64_t m_framing = 0; // bytes other than data so far
};

} // namespace claudegate::proxy
