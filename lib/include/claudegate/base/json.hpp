// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace claudegate::json {

using Json = nlohmann::json;

struct Limits {
  std::size_t max_bytes = 8 * 1024;
  int max_depth = 16;
};

// Parse `text` as one JSON object under `limits`: refuses other top-level
// types, duplicate member names at any depth, nesting deeper than
// limits.max_depth, more than limits.max_bytes, invalid UTF-8 and a leading
// UTF-8 byte order mark.
// Fails with malformed, naming the problem.
Result<Json> parse_object(std::string_view text, const Limits& limits = {});

// Parse `text` as any JSON value with the same strictness (used for --claim values).
Result<Json> parse_value(std::string_view text, const Limits& limits = {});

// `value` as a JSON literal, escaped (invalid UTF-8 replaced) and cut to
// about 80 characters: safe to echo attacker-controlled values in messages.
std::string quote(const Json& value);

// ---- Writing (json_write.cpp) ----------------------------------------------
// The one writer of JSON text built by hand (token headers and claims,
// report rows, verify result lines): appended straight to a string, byte
// for byte as nlohmann's compact dump() would write it, without building a
// document first.

// Append `text` to `out` as a JSON string literal, escaped as nlohmann's
// dump does (quote, backslash and control characters; UTF-8 kept as is).
// Returns false, with `out` partly written, when `text` is not valid UTF-8.
bool append_quoted(std::string& out, std::string_view text);

// As append_quoted, for text not trusted to be UTF-8: invalid bytes become
// U+FFFD as dump(-1, ' ', false, error_handler_t::replace) writes them.
void append_quoted_lossy(std::string& out, std::string_view text);

// Append `value` as value.dump() writes it (compact, object members in
// their sorted order). Throws Json::type_error on invalid UTF-8, as dump does.
void append_compact(std::string& out, const Json& value);

// Writes one JSON object into `out`, member by member in the order of the
// calls: {"a":1,"b":2} (compact) or {"a": 1, "b": 2} (spaced). Names and
// strings are checked for UTF-8 (see valid()). close() writes the '}'.
class ObjectWriter {
public:
  enum class Style { compact, spaced };

  explicit ObjectWriter(std::string& out, Style style = Style::compact);

  void string(std::string_view name, std::string_view value);
  // A string not trusted to be UTF-8, invalid bytes replaced (append_quoted_lossy).
  void string_lossy(std::string_view name, std::string_view value);
  void integer(std::string_view name, std::int64_t value);
  // The integer, or null when there is none.
  void integer(std::string_view name, const std::optional<std::int64_t>& value);
  void boolean(std::string_view name, bool value);
  void strings(std::string_view name, const std::vector<std::string>& values);
  // Any value, as append_compact writes it.
  void value(std::string_view name, const Json& value);
  // A member whose value is the JSON text `json_text`, copied as is.
  void raw(std::string_view name, std::string_view json_text);

  void close();

  // False once a name or string (not a lossy one) held invalid UTF-8.
  bool valid() const { return m_valid; }

private:
  void open(std::string_view name);

  std::string& m_out;
  std::string_view m_comma;
  std::string_view m_colon;
  bool m_first = true;
  bool m_valid = true;
};

} // namespace claudegate::json
