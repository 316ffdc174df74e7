// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "exit_code.hpp"

#include <claudegate/base/clock.hpp>
#include <claudegate/base/config.hpp>
#include <claudegate/base/home.hpp>
#include <claudegate/base/json.hpp>
#include <claudegate/jose/keyring.hpp>
#include <claudegate/store/open.hpp>
#include <claudegate/store/store.hpp>

#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>

namespace claudegate::app {

enum class OutputFormat { text, json };

// What every command shares: global options, time, randomness, the home
// and its config and keyring (loaded on first use), and error reporting.
class Context {
public:
  // Declare --home, --db and --config (with their env vars) on `app`.
  void setup_global_options(CLI::App& app);

  Clock& clock() { return m_clock; }
  RandomSource& random() { return m_random; }

  // The home's paths (flags beat env beat defaults). Fails with config when
  // the home exists but another user could change it (home::check).
  Result<home::HomePaths> paths();
  // The home's paths, creating the home folder (0700) when missing.
  Result<home::HomePaths> paths_created();
  // Built-in defaults overlaid with the config file (loaded once).
  Result<const config::Config*> config();
  // The keyring in the home's keys/ folder at the current time.
  Result<keyring::Keyring> keyring();

  // Where the store lives: --db / CLAUDEGATE_DB, else the config's store
  // key, else HOME/claudegate.db (SQLite). Fails with config on a
  // malformed location (shown with any password masked).
  Result<store::StoreLocation> store_location();

  // The store at store_location(), opened on first use; creates the home
  // when missing and the store is a SQLite file.
  Result<store::Store*> store();

  // Report `error` on stderr, as "claudegate: error: …" (or, when `format`
  // is json, its JSON error object on one line) and give its exit code.
  // Errors never go to stdout, which carries data only: a caller that keeps
  // stdout (an apiKeyHelper, `$(…)`) still shows why a command failed.
  ExitCode report(const Error& error, OutputFormat format = OutputFormat::text) const;

  // The exit code a command's callback leaves for main.
  void set_exit(ExitCode code) { m_exit = code; }
  ExitCode exit() const { return m_exit; }

private:
  home::Overrides m_overrides;
  SystemClock m_clock;
  SystemRandom m_random;
  std::optional<config::Config> m_config;
  std::unique_ptr<store::Store> m_store;
  ExitCode m_exit = ExitCode::success;
};

// The JSON error object of `error`: {"error":{"code":…,"message":…}}.
json::Json error_json(const Error& error);

// Print `value` as JSON on stdout: indented for people, one line with `format` json.
void print_json(const json::Json& value, OutputFormat format);

// Read all of stdin (for "-" arguments), bounded to `max_bytes`. Fails with io.
Result<std::string> read_stdin(std::size_t max_bytes = 1024 * 1024);

} // namespace claudegate::app
