// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/json.hpp"

#include <string>
#include <vector>

namespace claudegate::json {

namespace {

// `text` shortened and with control characters escaped, safe for a terminal or log line.
std::string printable(std::string_view text) {
  constexpr std::size_t k_max_shown = 64;
  std::string out;
  for (const char c : text.substr(0, k_max_shown)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      constexpr std::string_view k_hex = "0123456789abcdef";
      out += {'\\', 'x', k_hex[byte >> 4], k_hex[byte & 0xf]};
    } else {
      out += c;
    }
  }
  return text.size() > k_max_shown ? out + "..." : out;
}

// nlohmann's what() reads "[json.exception.parse_error.101] parse error at …;
// last read: '…'". Drop the tag, and the echo of input, which may be invalid
// UTF-8 that would break a terminal or a JSON error report.
std::string describe(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    const auto end = what.find("] ");
    if (end != std::string_view::npos) {
      what.remove_prefix(end + 2);
    }
  }
  const auto echo = what.find("; last read: ");
  if (echo == std::string_view::npos) {
    return std::string(what);
  }
  const auto expected = what.rfind("; expected ");
  const bool after = expected != std::string_view::npos && expected > echo;
  return std::string(what.substr(0, echo)) + std::string(after ? what.substr(expected) : std::string_view());
}

// An nlohmann SAX handler building the document like nlohmann's own DOM
// parser, but refusing duplicate member names and excessive nesting as it
// goes. Parsing stops at the first violation, described in error().
class StrictBuilder {
public:
  StrictBuilder(Json& root, int max_depth) : m_root(root), m_max_depth(max_depth) {}

  bool null() { return put(nullptr) != nullptr; }
  bool boolean(bool value) { return put(value) != nullptr; }
  bool number_integer(Json::number_integer_t value) { return put(value) != nullptr; }
  bool number_unsigned(Json::number_unsigned_t value) { return put(value) != nullptr; }
  bool number_float(Json::number_float_t value, const std::string& /*text*/) { return put(value) != nullptr; }
  bool string(std::string& value) { return put(std::move(value)) != nullptr; }
  bool binary(Json::binary_t& value) { return put(std::move(value)) != nullptr; }
  bool start_object(std::size_t /*elements*/) { return open(Json::object()); }
  bool start_array(std::size_t /*elements*/) { return open(Json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  // Duplicate names are ambiguous: parsers disagree on which one wins.
  bool key(std::string& name) {
    auto& object = m_open.back()->get_ref<Json::object_t&>();
    const auto [it, inserted] = object.try_emplace(std::move(name));
    if (!inserted) {
      return refuse("duplicate member name \"" + printable(it->first) + "\"");
    }
    m_member = &it->second;
    return true;
  }

  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& e) {
    m_error = describe(e.what());
    return false;
  }

  const std::string& error() const { return m_error; }

private:
  // Place `value` where the grammar says: the root, the next array element or the pending member.
  template <typename Value> Json* put(Value&& value) {
    if (m_open.empty()) {
      m_root = Json(std::forward<Value>(value));
      return &m_root;
    }
    Json& parent = *m_open.back();
    if (parent.is_array()) {
      return &parent.get_ref<Json::array_t&>().emplace_back(std::forward<Value>(value));
    }
    *m_member = Json(std::forward<Value>(value));
    return m_member;
  }

  bool open(Json container) {
    if (static_cast<int>(m_open.size()) + 1 > m_max_depth) {
      return refuse("nesting deeper than " + std::to_string(m_max_depth) + " levels");
    }
    m_open.push_back(put(std::move(container)));
    return true;
  }

  bool close() {
    m_open.pop_back();
    return true;
  }

  bool refuse(std::string why) {
    m_error = std::move(why);
    return false;
  }

  Json& m_root;
  int m_max_depth;
  std::vector<Json*> m_open; // containers not yet closed, innermost last
  Json* m_member = nullptr;  // the value slot of the last key read
  std::string m_error;
};

// A fast reader for the plain JSON tokens carry: objects, arrays, ASCII
// strings with the short escapes, integers of up to 18 digits, literals.
// It builds the same document StrictBuilder would, and gives up (returns
// false) on anything else, valid or not (\u escapes, non-ASCII, fractions,
// duplicates, too deep, syntax errors), so the full parser then decides and
// words the error. Accepting only what nlohmann accepts keeps both in step.
class PlainJsonReader {
public:
  PlainJsonReader(std::string_view text, int max_depth) : m_text(text), m_max_depth(max_depth) {}

  bool read(Json& root) {
    if (!value(root, 0)) {
      return false;
    }
    skip_space();
    return m_pos == m_text.size();
  }

private:
  bool value(Json& out, int depth) {
    skip_space();
    switch (m_pos < m_text.size() ? m_text[m_pos] : '\0') {
    case '{':
      return object(out, depth + 1);
    case '[':
      return array(out, depth + 1);
    case '"':
      return string_value(out);
    case 't':
      return literal("true", Json(true), out);
    case 'f':
      return literal("false", Json(false), out);
    case 'n':
      return literal("null", Json(nullptr), out);
    default:
      return number(out);
    }
  }

  bool object(Json& out, int depth) {
    if (depth > m_max_depth) {
      return false;
    }
    ++m_pos;
    out = Json::object();
    auto& members = out.get_ref<Json::object_t&>();
    if (skip_space(); consume('}')) {
      return true;
    }
    do {
      std::string name;
      if (skip_space(); !string(name) || (skip_space(), !consume(':'))) {
        return false;
      }
      const auto [it, inserted] = members.try_emplace(std::move(name));
      if (!inserted || !value(it->second, depth)) {
        return false;
      }
      skip_space();
    } while (consume(','));
    return consume('}');
  }

  bool array(Json& out, int depth) {
    if (depth > m_max_depth) {
      return false;
    }
    ++m_pos;
    out = Json::array();
    auto& elements = out.get_ref<Json::array_t&>();
    if (skip_space(); consume(']')) {
      return true;
    }
    do {
      if (!value(elements.emplace_back(), depth)) {
        return false;
      }
      skip_space();
    } while (consume(','));
    return consume(']');
  }

  bool string_value(Json& out) {
    std::string text;
    if (!string(text)) {
      return false;
    }
    out = std::move(text);
    return true;
  }

  // A string at m_pos into `out`, copying runs of plain characters at once.
  bool string(std::string& out) {
    if (!consume('"')) {
      return false;
    }
    std::size_t run = m_pos;
    while (m_pos < m_text.size()) {
      const auto c = static_cast<unsigned char>(m_text[m_pos]);
      if (c == '"' || c == '\\') {
        out.append(m_text.substr(run, m_pos - run));
        if (c == '"') {
          ++m_pos;
          return true;
        }
        if (!short_escape(out)) {
          return false;
        }
        run = m_pos;
      } else if (c < 0x20 || c >= 0x80) {
        return false;
      } else {
        ++m_pos;
      }
    }
    return false;
  }

  // The escape at m_pos (a backslash) appended to `out`; \u escapes are left to nlohmann.
  bool short_escape(std::string& out) {
    constexpr std::string_view k_escaped = "\"\\/bfnrt";
    constexpr std::string_view k_meaning = "\"\\/\b\f\n\r\t";
    const auto which = m_pos + 1 < m_text.size() ? k_escaped.find(m_text[m_pos + 1]) : std::string_view::npos;
    if (which == std::string_view::npos) {
      return false;
    }
    out.push_back(k_meaning[which]);
    m_pos += 2;
    return true;
  }

  // An integer of at most 18 digits (no overflow), as nlohmann types it:
  // unsigned when positive, signed with a minus sign.
  bool number(Json& out) {
    const bool negative = consume('-');
    const std::size_t first = m_pos;
    Json::number_unsigned_t magnitude = 0;
    while (m_pos < m_text.size() && m_text[m_pos] >= '0' && m_text[m_pos] <= '9' && m_pos - first < 19) {
      magnitude = magnitude * 10 + static_cast<Json::number_unsigned_t>(m_text[m_pos] - '0');
      ++m_pos;
    }
    constexpr std::size_t k_max_digits = 18;
    const std::size_t digits = m_pos - first;
    if (digits == 0 || digits > k_max_digits || (digits > 1 && m_text[first] == '0')) {
      return false;
    }
    if (m_pos < m_text.size() && (m_text[m_pos] == '.' || m_text[m_pos] == 'e' || m_text[m_pos] == 'E')) {
      return false;
    }
    out = negative ? Json(-static_cast<Json::number_integer_t>(magnitude)) : Json(magnitude);
    return true;
  }

  bool literal(std::string_view word, Json meaning, Json& out) {
    if (m_text.substr(m_pos, word.size()) != word) {
      return false;
    }
    m_pos += word.size();
    out = std::move(meaning);
    return true;
  }

  void skip_space() {
    while (m_pos < m_text.size()
           && (m_text[m_pos] == ' ' || m_text[m_pos] == '\n' || m_text[m_pos] == '\r'
               || m_text[m_pos] == '\t')) {
      ++m_pos;
    }
  }

  bool consume(char c) {
    if (m_pos < m_text.size() && m_text[m_pos] == c) {
      ++m_pos;
      return true;
    }
    return false;
  }

  std::string_view m_text;
  int m_max_depth;
  std::size_t m_pos = 0;
};

// RFC 8259 §8.1: JSON text must not begin with a byte order mark. nlohmann
// skips one silently; PyJWT, panva/jose and Go refuse it, and a verifier
// that accepts what the others refuse is a parser differential.
constexpr std::string_view k_utf8_bom = "\xEF\xBB\xBF";

Result<Json> parse_strict(std::string_view text, const Limits& limits) {
  if (text.size() > limits.max_bytes) {
    return fail(Errc::malformed, "json: " + std::to_string(text.size()) + " bytes exceeds the limit of "
                                     + std::to_string(limits.max_bytes));
  }
  if (text.starts_with(k_utf8_bom)) {
    return fail(Errc::malformed, "json: starts with a UTF-8 byte order mark (EF BB BF), which JSON text "
                                 "must not carry (RFC 8259 section 8.1); remove it");
  }
  Json root;
  if (PlainJsonReader(text, limits.max_depth).read(root)) {
    return root;
  }
  root = Json();
  StrictBuilder builder(root, limits.max_depth);
  try {
    if (!Json::sax_parse(text, &builder)) {
      return fail(Errc::malformed, "json: " + builder.error());
    }
  } catch (const Json::exception& e) {
    return fail(Errc::malformed, "json: " + describe(e.what()));
  }
  return root;
}

} // namespace

Result<Json> parse_object(std::string_view text, const Limits& limits) {
  auto value = parse_strict(text, limits);
  if (!value) {
    return value;
  }
  if (!value->is_object()) {
    return fail(Errc::malformed, std::string("json: expected an object, got ") + value->type_name());
  }
  return value;
}

Result<Json> parse_value(std::string_view text, const Limits& limits) {
  return parse_strict(text, limits);
}

std::string quote(const Json& value) {
  constexpr std::size_t k_max_echo = 80;
  auto text = value.dump(-1, ' ', true, Json::error_handler_t::replace);
  if (text.size() > k_max_echo) {
    text.resize(k_max_echo);
    text += "…";
  }
  return text;
}

} // namespace claudegate::json
