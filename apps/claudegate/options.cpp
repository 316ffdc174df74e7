// SPDX-License-Identifier: Apache-2.0
#include "options.hpp"

#include "context.hpp"

#include <claudegate/base/duration.hpp>
#include <claudegate/base/text.hpp>
#include <claudegate/jose/keys.hpp>

#include <unistd.h>

namespace claudegate::app {

namespace {

std::string trimmed(std::string_view text) {
  return std::string(text::trim(text, " \t\r\n"));
}

} // namespace

void add_json_flag(CLI::App& cmd, OutputFormat& format) {
  cmd.add_flag_callback(
      "--json", [&format] { format = OutputFormat::json; }, "machine-readable JSON output");
}

const CLI::Validator& duration_validator() {
  static const CLI::Validator k_validator(
      [](const std::string& text) {
        auto parsed = duration::parse(text);
        return parsed ? std::string{} : parsed.error().message;
      },
      "DURATION");
  return k_validator;
}

const CLI::Validator& time_validator() {
  static const CLI::Validator k_validator(
      [](const std::string& text) {
        auto parsed = duration::parse_time(text);
        return parsed ? std::string{} : parsed.error().message;
      },
      "TIME");
  return k_validator;
}

std::int64_t seconds_of(const std::string& text) {
  return duration::parse(text).value_or(0);
}

std::vector<std::string> alg_names() {
  std::vector<std::string> names;
  for (const keys::Alg alg : keys::all_algs()) {
    names.emplace_back(alg_name(alg));
  }
  return names;
}

Result<std::string> token_argument(const std::string& argument) {
  if (!argument.empty() && argument != "-") {
    return trimmed(argument);
  }
  if (argument.empty() && isatty(STDIN_FILENO)) {
    return fail(Errc::config, "no token given; pass it as an argument or '-' to read stdin");
  }
  auto input = read_stdin();
  if (!input) {
    return input;
  }
  auto token = trimmed(*input);
  if (token.empty()) {
    return fail(Errc::config, "no token on standard input; pipe one in or pass it as an argument");
  }
  return token;
}

} // namespace claudegate::app
