// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/sse_usage.hpp"

#include "claudegate/base/json.hpp"

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

// The counts of a body's top-level "usage" object, read by SAX events: no
// document is built, and nothing is allocated for the rest of the body
// (the content, most of a reply, which every non-streaming reply brings).
// As a parsed document would have it, a later duplicate member replaces an
// earlier one, and a count that is not a non-negative integer is absent.
class TopLevelUsage final : public nlohmann::json_sax<Json> {
public:
  bool is_object() const { return m_is_object; }
  const std::optional<std::int64_t>& count(std::size_t field) const { return m_counts.at(field); }

  // The fields of k_fields, in Usage's terms.
  static constexpr std::size_t input = 0, output = 1, cache_write = 2, cache_read = 3;

  bool null() override { return scalar(std::nullopt); }
  bool boolean(bool /*value*/) override { return scalar(std::nullopt); }
  bool number_integer(number_integer_t value) override {
    return scalar(value < 0 ? std::nullopt : std::optional<std::int64_t>(value));
  }
  bool number_unsigned(number_unsigned_t value) override {
    constexpr auto k_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return scalar(static_cast<std::int64_t>(std::min<std::uint64_t>(value, k_max)));
  }
  bool number_float(number_float_t /*value*/, const string_t& /*text*/) override {
    return scalar(std::nullopt);
  }
  bool string(string_t& /*value*/) override { return scalar(std::nullopt); }
  bool binary(binary_t& /*value*/) override { return scalar(std::nullopt); }
  bool start_object(std::size_t /*elements*/) override {
    const bool opens_usage = m_depth == 1 && m_member_is_usage;
    scalar(std::nullopt); // as a value, an object is no count
    if (opens_usage) {
      m_is_object = true;
      m_in_usage = true;
    }
    ++m_depth;
    return true;
  }
  bool end_object() override {
    --m_depth;
    if (m_depth == 1) {
      m_in_usage = false;
    }
    return true;
  }
  bool start_array(std::size_t /*elements*/) override {
    scalar(std::nullopt);
    ++m_depth;
    return true;
  }
  bool end_array() override {
    --m_depth;
    return true;
  }
  bool key(string_t& name) override {
    if (m_depth == 1) {
      m_member_is_usage = name == "usage";
    } else if (m_depth == 2 && m_in_usage) {
      const auto it = std::find(k_fields.begin(), k_fields.end(), name);
      m_field = it == k_fields.end() ? k_none : static_cast<std::size_t>(it - k_fields.begin());
    }
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*error*/) override {
    return false;
  }

private:
  static constexpr std::size_t k_none = 4;
  static constexpr std::array<std::string_view, 4> k_fields = {
      "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"};

  // A value (or the start of one) at the current depth: a new top-level
  // "usage" starts afresh; a usage member sets or clears its count.
  bool scalar(std::optional<std::int64_t> count) {
    if (m_depth == 1 && m_member_is_usage) {
      m_is_object = false;
      m_counts = {};
    } else if (m_depth == 2 && m_in_usage && m_field != k_none) {
      m_counts.at(m_field) = count;
    }
    return true;
  }

  int m_depth = 0;
  bool m_member_is_usage = false;
  bool m_in_usage = false;
  bool m_is_object = false;
  std::size_t m_field = k_none;
  std::array<std::optional<std::int64_t>, 4> m_counts;
};

// The top-level usage of `json_body`; nullopt when it is not a JSON object
// or has no usage object.
std::optional<TopLevelUsage> top_level_usage(std::string_view json_body) {
  TopLevelUsage usage;
  if (!Json::sax_parse(json_body, &usage) || !usage.is_object()) {
    return std::nullopt;
  }
  return usage;
}

Usage usage_of(const TopLevelUsage& counts) {
  Usage usage;
  usage.input_tokens = counts.count(TopLevelUsage::input).value_or(0);
  usage.output_tokens = counts.count(TopLevelUsage::output).value_or(0);
  usage.cache_write_tokens = counts.count(TopLevelUsage::cache_write).value_or(0);
  usage.cache_read_tokens = counts.count(TopLevelUsage::cache_read).value_or(0);
  return usage;
}

} // namespace

Usage usage_from_message(std::string_view json_body) {
  const auto counts = top_level_usage(json_body);
  return counts ? usage_of(*counts) : Usage{};
}

std::optional<Usage> reported_usage(std::string_view json_body) {
  const auto counts = top_level_usage(json_body);
  if (!counts || !counts->count(TopLevelUsage::input) || !counts->count(TopLevelUsage::output)) {
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
