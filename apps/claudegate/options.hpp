// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "context.hpp"

#include <claudegate/base/clock.hpp>
#include <claudegate/base/errors.hpp>

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace claudegate::app {

// Declare --json on `cmd`, setting `format` to json when given.
void add_json_flag(CLI::App& cmd, OutputFormat& format);

// CLI11 validator: accepts "90s", "15m", "12h", "7d" or plain seconds.
const CLI::Validator& duration_validator();
// CLI11 validator: accepts Unix seconds or RFC 3339.
const CLI::Validator& time_validator();

// `text` as seconds; the validator has already accepted it.
std::int64_t seconds_of(const std::string& text);

// The algorithm names in user order, for IsMember checks and help.
std::vector<std::string> alg_names();

// The token to work on: `argument` itself, or stdin when it is "-" or empty
// (trimmed of surrounding whitespace). Fails with config when there is none.
Result<std::string> token_argument(const std::string& argument);

} // namespace claudegate::app
