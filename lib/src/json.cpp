// SPDX-License-Identifier: Apache-2.0
#include "claudegate/json.hpp"

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace claudegate::json {

namespace {

// Thrown from the parser callback to stop parsing at the first policy violation.
class PolicyViolation : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Tracks member names per open object and nesting depth while nlohmann parses.
class StrictnessGuard {
public:
  explicit StrictnessGuard(int max_depth) : m_max_depth(max_depth) {}

  bool operator()(int depth, Json::parse_event_t event, const Json& parsed) {
    using Event = Json::parse_event_t;
    switch (event) {
    case Event::object_start:
      check_depth(depth);
      m_keys.emplace_back();
      break;
    case Event::array_start:
      check_depth(depth);
      break;
    case Event::object_end:
      m_keys.pop_back();
      break;
    case Event::key:
      check_key(parsed.get_ref<const std::string&>());
      break;
    default:
      break;
    }
    return true;
  }

private:
  // nlohmann reports the depth outside the container being opened.
  void check_depth(int depth) const {
    if (depth + 1 > m_max_depth) {
      throw PolicyViolation("nesting deeper than " + std::to_string(m_max_depth) + " levels");
    }
  }

  // Duplicate names are ambiguous: parsers disagree on which one wins.
  void check_key(const std::string& key) {
    if (!m_keys.back().insert(key).second) {
      throw PolicyViolation("duplicate member name \"" + printable(key) + "\"");
    }
  }

  // `text` shortened and with control characters escaped, safe for a terminal or log line.
  static std::string printable(std::string_view text) {
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

  int m_max_depth;
  std::vector<std::set<std::string, std::less<>>> m_keys;
};

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

Result<Json> parse_strict(std::string_view text, const Limits& limits) {
  if (text.size() > limits.max_bytes) {
    return fail(Errc::malformed, "json: " + std::to_string(text.size()) + " bytes exceeds the limit of "
                                     + std::to_string(limits.max_bytes));
  }
  StrictnessGuard guard(limits.max_depth);
  try {
    return Json::parse(text, [&guard](int depth, Json::parse_event_t event, Json& parsed) {
      return guard(depth, event, parsed);
    });
  } catch (const PolicyViolation& e) {
    return fail(Errc::malformed, std::string("json: ") + e.what());
  } catch (const Json::exception& e) {
    return fail(Errc::malformed, "json: " + describe(e.what()));
  }
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
    text = text.substr(0, k_max_echo) + "…";
  }
  return text;
}

} // namespace claudegate::json
