// SPDX-License-Identifier: Apache-2.0
// The one JSON writer: string literals, values and objects appended to a
// string as nlohmann's compact dump() writes them.
#include "claudegate/base/json.hpp"

#include <array>
#include <charconv>
#include <string>

namespace claudegate::json {

namespace {

// Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs,
// surrogates or code points past U+10FFFF) that `text` starts with; 0 when
// there is none. `text` starts with a byte ≥ 0x80.
std::size_t utf8_sequence_length(std::string_view text) {
  const auto lead = static_cast<unsigned char>(text[0]);
  const std::size_t length = lead < 0xc2 ? 0 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : lead < 0xf5 ? 4 : 0;
  if (length == 0 || text.size() < length) {
    return 0;
  }
  // The second byte's range narrows after E0, ED, F0 and F4; the others are 80..BF.
  const unsigned char low = lead == 0xe0 ? 0xa0 : lead == 0xf0 ? 0x90 : 0x80;
  const unsigned char high = lead == 0xed ? 0x9f : lead == 0xf4 ? 0x8f : 0xbf;
  for (std::size_t i = 1; i < length; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < (i == 1 ? low : 0x80) || byte > (i == 1 ? high : 0xbf)) {
      return 0;
    }
  }
  return length;
}

// Printable ASCII other than quote and backslash: copied into a JSON string as is.
constexpr std::array<bool, 256> k_plain_in_string = [] {
  std::array<bool, 256> table{};
  for (std::size_t byte = 0x20; byte < 0x80; ++byte) {
    table[byte] = byte != '"' && byte != '\\';
  }
  return table;
}();

// The escape for control character or quote/backslash `byte`, as nlohmann's dump writes it.
void append_escape(std::string& out, unsigned char byte) {
  constexpr std::string_view k_hex = "0123456789abcdef";
  switch (byte) {
  case '"':
    out += "\\\"";
    return;
  case '\\':
    out += "\\\\";
    return;
  case '\b':
    out += "\\b";
    return;
  case '\f':
    out += "\\f";
    return;
  case '\n':
    out += "\\n";
    return;
  case '\r':
    out += "\\r";
    return;
  case '\t':
    out += "\\t";
    return;
  default:
    out += {'\\', 'u', '0', '0', k_hex[byte >> 4], k_hex[byte & 0xf]};
  }
}

template <typename Integer> void append_integer(std::string& out, Integer value) {
  std::array<char, 24> digits{}; // 20 digits and a sign at most
  const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value).ptr;
  out.append(digits.data(), end);
}

// `text` as a string literal; invalid UTF-8 goes to dump() so that it
// throws the very type_error dump() throws.
void append_string_strict(std::string& out, std::string_view text) {
  const std::size_t size = out.size();
  if (!append_quoted(out, text)) {
    out.resize(size);
    out += Json(std::string(text)).dump();
  }
}

void append_container(std::string& out, const Json& value) {
  const bool object = value.is_object();
  out += object ? '{' : '[';
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (it != value.begin()) {
      out += ',';
    }
    if (object) {
      append_string_strict(out, it.key());
      out += ':';
    }
    append_compact(out, *it);
  }
  out += object ? '}' : ']';
}

} // namespace

bool append_quoted(std::string& out, std::string_view text) {
  out.push_back('"');
  std::size_t run = 0; // start of the characters not yet copied
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (k_plain_in_string[byte]) {
      ++i;
    } else if (byte >= 0x80) {
      const std::size_t length = utf8_sequence_length(text.substr(i));
      if (length == 0) {
        return false;
      }
      i += length;
    } else {
      out.append(text.substr(run, i - run));
      append_escape(out, byte);
      run = ++i;
    }
  }
  out.append(text.substr(run));
  out.push_back('"');
  return true;
}

void append_quoted_lossy(std::string& out, std::string_view text) {
  const std::size_t size = out.size();
  if (!append_quoted(out, text)) {
    out.resize(size);
    out += Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

void append_compact(std::string& out, const Json& value) {
  switch (value.type()) {
  case Json::value_t::object:
  case Json::value_t::array:
    append_container(out, value);
    return;
  case Json::value_t::string:
    append_string_strict(out, value.get_ref<const std::string&>());
    return;
  case Json::value_t::number_unsigned:
    append_integer(out, value.get<std::uint64_t>());
    return;
  case Json::value_t::number_integer:
    append_integer(out, value.get<std::int64_t>());
    return;
  case Json::value_t::boolean:
    out += value.get<bool>() ? "true" : "false";
    return;
  case Json::value_t::null:
    out += "null";
    return;
  default: // floats (nlohmann's shortest round-trip form), binary, discarded
    out += value.dump();
  }
}

ObjectWriter::ObjectWriter(std::string& out, Style style)
    : m_out(out), m_comma(style == Style::compact ? "," : ", "),
      m_colon(style == Style::compact ? ":" : ": ") {
  m_out.push_back('{');
}

void ObjectWriter::open(std::string_view name) {
  if (!m_first) {
    m_out.append(m_comma);
  }
  m_first = false;
  m_valid = append_quoted(m_out, name) && m_valid;
  m_out.append(m_colon);
}

void ObjectWriter::string(std::string_view name, std::string_view value) {
  open(name);
  m_valid = append_quoted(m_out, value) && m_valid;
}

void ObjectWriter::string_lossy(std::string_view name, std::string_view value) {
  open(name);
  append_quoted_lossy(m_out, value);
}

void ObjectWriter::integer(std::string_view name, std::int64_t value) {
  open(name);
  append_integer(m_out, value);
}

void ObjectWriter::integer(std::string_view name, const std::optional<std::int64_t>& value) {
  if (value) {
    integer(name, *value);
  } else {
    raw(name, "null");
  }
}

void ObjectWriter::boolean(std::string_view name, bool value) {
  raw(name, value ? "true" : "false");
}

void ObjectWriter::strings(std::string_view name, const std::vector<std::string>& values) {
  open(name);
  m_out.push_back('[');
  for (std::size_t i = 0; i < values.size(); ++i) {
    m_out.append(i == 0 ? "" : m_comma);
    m_valid = append_quoted(m_out, values[i]) && m_valid;
  }
  m_out.push_back(']');
}

void ObjectWriter::value(std::string_view name, const Json& value) {
  open(name);
  append_compact(m_out, value);
}

void ObjectWriter::raw(std::string_view name, std::string_view json_text) {
  open(name);
  m_out.append(json_text);
}

void ObjectWriter::close() {
  m_out.push_back('}');
}

} // namespace claudegate::json
