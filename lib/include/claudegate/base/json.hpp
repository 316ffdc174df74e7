// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

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

// Append `text` to `out` as a JSON string literal, escaped as nlohmann's
// dump does (quote, backslash and control characters; UTF-8 kept as is).
// Returns false, with `out` partly written, when `text` is not valid UTF-8.
bool append_quoted(std::string& out, std::string_view text);

// `value` as a JSON literal, escaped (invalid UTF-8 replaced) and cut to
// about 80 characters: safe to echo attacker-controlled values in messages.
std::string quote(const Json& value);

} // namespace claudegate::json
