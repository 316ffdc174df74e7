// SPDX-License-Identifier: Apache-2.0
#include "context.hpp"

#include <claudegate/base/fs.hpp>

#include <fmt/core.h>

#include <iostream>
#include <iterator>

namespace claudegate::app {

void Context::setup_global_options(CLI::App& app) {
  app.add_option("--home", m_overrides.home, "claudegate home folder (keys/, claudegate.db, claudegate.toml)")
      ->envname("CLAUDEGATE_HOME");
  app.add_option("--db", m_overrides.db,
                 "the store: a SQLite file, sqlite:PATH, or a postgresql:// URI for replicas sharing one "
                 "database (default: the config's store, else HOME/claudegate.db)")
      ->envname("CLAUDEGATE_DB");
  app.add_option("--config", m_overrides.config, "config file (default: HOME/claudegate.toml)")
      ->envname("CLAUDEGATE_CONFIG");
}

Result<home::HomePaths> Context::paths() {
  auto paths = home::resolve(m_overrides);
  if (!paths) {
    return paths;
  }
  // Every command that uses the home first refuses one another user could change.
  if (auto safe = home::check(*paths); !safe) {
    return propagate(safe);
  }
  return paths;
}

Result<home::HomePaths> Context::paths_created() {
  auto paths = this->paths();
  if (!paths) {
    return paths;
  }
  if (auto made = fs::create_private_dir(paths->home); !made) {
    return propagate(made);
  }
  return paths;
}

Result<const config::Config*> Context::config() {
  if (m_config) {
    return &*m_config;
  }
  auto paths = this->paths();
  if (!paths) {
    return propagate(paths);
  }
  const auto required = paths->config_explicit ? config::Required::yes : config::Required::no;
  auto loaded = config::load(paths->config, required);
  if (!loaded) {
    return propagate(loaded);
  }
  m_config = std::move(*loaded);
  return &*m_config;
}

Result<keyring::Keyring> Context::keyring() {
  auto paths = this->paths();
  if (!paths) {
    return propagate(paths);
  }
  return keyring::Keyring::open(paths->keys_dir, m_clock.now());
}

Result<store::StoreLocation> Context::store_location() {
  auto paths = this->paths();
  if (!paths) {
    return propagate(paths);
  }
  if (paths->db_explicit) {
    return store::parse_store_location(paths->db);
  }
  auto cfg = config();
  if (!cfg) {
    return propagate(cfg);
  }
  if ((*cfg)->store.empty()) {
    return store::parse_store_location(paths->db);
  }
  auto location = store::parse_store_location((*cfg)->store);
  if (!location) {
    return fail(location.error().code,
                fmt::format("the store key of {}: {}", paths->config.string(), location.error().message));
  }
  return location;
}

Result<store::Store*> Context::store() {
  if (m_store) {
    return m_store.get();
  }
  auto location = store_location();
  if (!location) {
    return propagate(location);
  }
  // A SQLite file in the home needs the home; a database server does not.
  if (location->backend == store::StoreLocation::Backend::sqlite) {
    if (auto created = paths_created(); !created) {
      return propagate(created);
    }
  }
  auto opened = store::open_store(*location);
  if (!opened) {
    return propagate(opened);
  }
  m_store = std::move(*opened);
  return m_store.get();
}

ExitCode Context::report(const Error& error, OutputFormat format) const {
  if (format == OutputFormat::json) {
    fmt::print(stderr, "{}\n", error_json(error).dump());
  } else {
    fmt::print(stderr, "claudegate: error: {}\n", error.message);
  }
  return exit_code_for(error.code);
}

json::Json error_json(const Error& error) {
  return {{"error", {{"code", errc_code(error.code)}, {"message", error.message}}}};
}

void print_json(const json::Json& value, OutputFormat format) {
  const int indent = format == OutputFormat::json ? -1 : 2;
  fmt::print("{}\n", value.dump(indent));
}

Result<std::string> read_stdin(std::size_t max_bytes) {
  std::string data;
  char buffer[4096];
  while (std::cin.read(buffer, sizeof buffer) || std::cin.gcount() > 0) {
    data.append(buffer, static_cast<std::size_t>(std::cin.gcount()));
    if (data.size() > max_bytes) {
      return fail(Errc::io, fmt::format("standard input is larger than {} bytes", max_bytes));
    }
  }
  return data;
}

} // namespace claudegate::app
