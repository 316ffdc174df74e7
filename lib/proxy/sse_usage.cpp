// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/sse_usage.hpp"

#include "claudegate/base/json.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <limits>

namespace claudegate::proxy {

namespace {

using json::Json;

// The member `name` of `object` as a token count, if it is a non-negative integer.
std::optional<std::int64_t> count_member(const Json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end()) {
    return std::nullopt;
  }
  if (it->is_number_unsigned()) {
    const auto value = it->get<std::uint64_t>();
    constexpr auto k_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(value > k_max ? k_max : value);
  }
  if (it->is_number_integer()) {
    const auto value = it->get<std::int64_t>();
    return value < 0 ? std::nullopt : std::optional(value);
  }
  return std::nullopt;
}

void replace_if_present(std::int64_t& target, const Json& usage, const char* name) {
  if (const auto value = count_member(usage, name)) {
    target = *value;
  }
}

// Overlay every count `usage` carries onto `out`; later reports replace earlier ones.
void merge_usage(Usage& out, const Json& usage) {
  if (!usage.is_object()) {
    return;
  }
  replace_if_present(out.input_tokens, usage, "input_tokens");
  replace_if_present(out.output_tokens, usage, "output_tokens");
  replace_if_present(out.cache_write_tokens, usage, "cache_creation_input_tokens");
  replace_if_present(out.cache_read_tokens, usage, "cache_read_input_tokens");
}

const Json& member_or_null(const Json& object, const char* name) {
  static const Json k_null;
  if (!object.is_object()) {
    return k_null;
  }
  const auto it = object.find(name);
  return it == object.end() ? k_null : *it;
}

// The event's type: the JSON "type" member, which Anthropic always sends,
// else the SSE "event:" field.
std::string event_type_of(const Json& event, const std::string& sse_event) {
  const Json& type = member_or_null(event, "type");
  return type.is_string() ? type.get<std::string>() : sse_event;
}

// Bytes of what a delta generates: its text, tool-input JSON or thinking
// (any string member but its type and a thinking block's signature).
std::uint64_t generated_bytes(const Json& delta) {
  std::uint64_t bytes = 0;
  if (delta.is_object()) {
    for (const auto& [key, value] : delta.items()) {
      if (value.is_string() && key != "type" && key != "signature") {
        bytes += value.get_ref<const std::string&>().size();
      }
    }
  }
  return bytes;
}

std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  return line;
}

} // namespace

void SseUsageMeter::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, newline);
    if (m_line_overflow) {
      // Skipping the rest of an over-long line; nothing of it is kept.
    } else if (m_line.size() + piece.size() > k_max_event_bytes) {
      m_line_overflow = true;
      m_oversized = true;
      m_line.clear();
    } else if (newline != std::string_view::npos && m_line.empty()) {
      consume_line(strip_cr(piece)); // the common case: a whole line inside one chunk, no copy
    } else {
      m_line.append(piece);
      if (newline != std::string_view::npos) {
        consume_line(strip_cr(m_line));
        m_line.clear();
      }
    }
    if (newline == std::string_view::npos) {
      return;
    }
    m_line_overflow = false;
    bytes.remove_prefix(newline + 1);
  }
}

void SseUsageMeter::consume_line(std::string_view line) {
  if (line.empty()) {
    dispatch();
    return;
  }
  if (line.front() == ':') {
    return; // comment
  }
  const auto colon = line.find(':');
  std::string_view value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') {
    value.remove_prefix(1);
  }
  consume_field(line.substr(0, colon), value);
}

void SseUsageMeter::consume_field(std::string_view name, std::string_view value) {
  if (name == "event") {
    m_event_type.assign(value);
    return;
  }
  if (name != "data" || m_oversized) {
    return;
  }
  if (m_data.size() + value.size() + 1 > k_max_event_bytes) {
    m_oversized = true;
    m_data.clear();
    return;
  }
  if (m_has_data) {
    m_data.push_back('\n');
  }
  m_data.append(value);
  m_has_data = true;
}

void SseUsageMeter::dispatch() {
  if (m_has_data && !m_oversized) {
    const Json event = Json::parse(m_data, nullptr, /*allow_exceptions=*/false);
    const std::string type = event.is_object() ? event_type_of(event, m_event_type) : std::string{};
    if (type == "content_block_delta") {
      m_content_bytes += generated_bytes(member_or_null(event, "delta"));
    } else if (type == "message_start") {
      m_started = true;
      const Json& message = member_or_null(event, "message");
      merge_usage(m_usage, member_or_null(message, "usage"));
      if (const Json& model = member_or_null(message, "model"); model.is_string()) {
        m_model = model.get<std::string>();
      }
    } else if (type == "message_delta") {
      merge_usage(m_usage, member_or_null(event, "usage"));
    } else if (type == "message_stop") {
      m_finished = true;
    }
  }
  m_event_type.clear();
  m_data.clear();
  m_has_data = false;
  m_oversized = false;
}

namespace {

// Usage's counts as a reply's "usage" object names them.
enum Count : std::size_t { input, output, cache_write, cache_read, k_counts };
constexpr std::array<std::string_view, k_counts> k_count_names = {
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"};

using Counts = std::array<std::optional<std::int64_t>, k_counts>;

// `value` as a token count, if it is a non-negative integer (a larger one than
// int64 holds is held at its maximum).
std::optional<std::int64_t> count_of(simdjson::dom::element value) {
  if (std::int64_t signed_value = 0; value.get_int64().get(signed_value) == simdjson::SUCCESS) {
    return signed_value < 0 ? std::nullopt : std::optional(signed_value);
  }
  if (std::uint64_t unsigned_value = 0; value.get_uint64().get(unsigned_value) == simdjson::SUCCESS) {
    return std::numeric_limits<std::int64_t>::max(); // above int64's range
  }
  return std::nullopt;
}

// Every non-streaming reply is read here, so it is parsed with simdjson (a
// 450-byte reply in ~0.15 µs against nlohmann's ~3 µs): the whole body is
// validated, then only the top level's last "usage" member is read (as a
// document with duplicate names resolves them: the later one wins). Each io
// thread keeps its parser and a padded copy of the body between replies.
constexpr std::size_t k_kept_parser_bytes = 1 << 20; // larger replies use a parser of their own

std::optional<Counts> top_level_usage(std::string_view json_body) {
  thread_local simdjson::dom::parser kept_parser;
  thread_local std::string kept_copy;
  simdjson::dom::parser own_parser;
  std::string own_copy;
  const bool kept = json_body.size() <= k_kept_parser_bytes;
  auto& parser = kept ? kept_parser : own_parser;
  auto& padded = kept ? kept_copy : own_copy;
  padded.assign(json_body);
  padded.resize(json_body.size() + simdjson::SIMDJSON_PADDING, ' ');
  simdjson::dom::object body;
  if (parser.parse(padded.data(), json_body.size(), /*realloc_if_needed=*/false).get_object().get(body)
      != simdjson::SUCCESS) {
    return std::nullopt;
  }
  std::optional<simdjson::dom::element> usage;
  for (const auto member : body) {
    if (member.key == "usage") {
      usage = member.value;
    }
  }
  simdjson::dom::object object;
  if (!usage || usage->get_object().get(object) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  Counts counts;
  for (const auto member : object) {
    const auto* name = std::find(k_count_names.begin(), k_count_names.end(), member.key);
    if (name != k_count_names.end()) {
      counts.at(static_cast<std::size_t>(name - k_count_names.begin())) = count_of(member.value);
    }
  }
  return counts;
}

Usage usage_of(const Counts& counts) {
  return Usage{counts[input].value_or(0), counts[output].value_or(0), counts[cache_read].value_or(0),
               counts[cache_write].value_or(0)};
}

} // namespace

Usage usage_from_message(std::string_view json_body) {
  const auto counts = top_level_usage(json_body);
  return counts ? usage_of(*counts) : Usage{};
}

std::optional<Usage> reported_usage(std::string_view json_body) {
  const auto counts = top_level_usage(json_body);
  if (!counts || !(*counts)[input] || !(*counts)[output]) {
    return std::nullopt;
  }
  return usage_of(*counts);
}

Charge charge_stream(const SseUsageMeter& meter, const ReservedTokens& reserved) {
  if (meter.finished()) {
    return {meter.usage(), false};
  }
  if (!meter.started()) {
    return {Usage{reserved.input, reserved.output, 0, 0}, true};
  }
  Usage usage = meter.usage();
  const auto relayed = static_cast<std::int64_t>(std::min<std::uint64_t>(
      (meter.content_bytes() + k_estimate_bytes_per_token - 1) / k_estimate_bytes_per_token,
      std::numeric_limits<std::int64_t>::max()));
  usage.output_tokens = std::max(usage.output_tokens, relayed);
  return {usage, true};
}

Charge charge_message(std::string_view json_body, const ReservedTokens& reserved) {
  if (auto usage = reported_usage(json_body)) {
    return {*usage, false};
  }
  return {Usage{reserved.input, reserved.output, 0, 0}, true};
}

} // namespace claudegate::proxy
