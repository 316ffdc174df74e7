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
      throw PolicyViolation("duplicate member name \"" + key + "\"");
    }
  }

  int m_max_depth;
  std::vector<std::set<std::string, std::less<>>> m_keys;
};

// nlohmann's what() starts with "[json.exception.parse_error.101] "; drop that tag.
std::string without_tag(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    const auto end = what.find("] ");
    if (end != std::string_view::npos) {
      what.remove_prefix(end + 2);
    }
  }
  return std::string(what);
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
    return fail(Errc::malformed, "json: " + without_tag(e.what()));
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

} // namespace claudegate::json
