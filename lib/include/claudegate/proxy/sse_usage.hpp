// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace claudegate::proxy {

// Tokens one Messages API call consumed, as the ledger records them.
struct Usage {
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int64_t cache_read_tokens = 0;
  std::int64_t cache_write_tokens = 0;
};

// Reads usage out of an Anthropic SSE stream as it is relayed, without
// altering or holding back any byte. Never throws on bad input: malformed
// event JSON is ignored and an event larger than k_max_event_bytes is dropped.
class SseUsageMeter {
public:
  static constexpr std::size_t k_max_event_bytes = 1024 * 1024;

  // Consume the next `bytes` of the stream; events and lines may be split
  // across any chunk boundary, lines end in \n or \r\n.
  void feed(std::string_view bytes);

  // Usage seen so far: message_start's input and cache counts, the last
  // running total of message_delta's output_tokens.
  const Usage& usage() const { return m_usage; }

  // True once message_stop has been seen.
  bool finished() const { return m_finished; }

  // The model named by message_start, if it has been seen.
  std::optional<std::string> model() const { return m_model; }

private:
  void consume_line(std::string_view line);
  void consume_field(std::string_view name, std::string_view value);
  void dispatch();

  std::string m_line;           // the unfinished line carried over from the last chunk
  bool m_line_overflow = false; // the current line outgrew the limit and is being skipped
  std::string m_event_type;     // "event:" field of the event being assembled
  std::string m_data;           // "data:" lines of the event being assembled, joined with \n
  bool m_has_data = false;
  bool m_oversized = false; // the event being assembled is too large and will be dropped
  Usage m_usage;
  bool m_finished = false;
  std::optional<std::string> m_model;
};

// The usage of a non-streaming Messages response `json_body` (its "usage"
// member); all zeros when the body or the member is absent or invalid.
Usage usage_from_message(std::string_view json_body);

} // namespace claudegate::proxy
