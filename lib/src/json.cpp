// SPDX-License-Identifier: Apache-2.0
#include "claudegate/json.hpp"

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

Result<Json> parse_strict(std::string_view text, const Limits& limits) {
  if (text.size() > limits.max_bytes) {
    return fail(Errc::malformed, "json: " + std::to_string(text.size()) + " bytes exceeds the limit of "
                                     + std::to_string(limits.max_bytes));
  }
  Json root;
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
