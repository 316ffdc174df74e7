// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace claudegate::home {

// Where a claudegate home's parts live.
struct HomePaths {
  std::filesystem::path home;
  std::filesystem::path keys_dir; // home/keys
  // Where the store lives, as text (store::parse_store_location reads it):
  // a file path, "sqlite:PATH" or a postgresql:// URI; home/claudegate.db
  // unless overridden.
  std::string db;
  bool db_explicit = false;     // --db/CLAUDEGATE_DB given: beats the config's store key
  std::filesystem::path config; // home/claudegate.toml unless overridden
  bool config_explicit = false; // --config/CLAUDEGATE_CONFIG given: must exist
};

// Values from flags or env (CLI11 resolves flag-over-env before this).
struct Overrides {
  std::optional<std::string> home;
  std::optional<std::string> db;
  std::optional<std::string> config;
};

// Resolve the home: `overrides`, else ${XDG_DATA_HOME:-~/.local/share}/claudegate.
// Fails with config when neither HOME nor XDG_DATA_HOME is set.
Result<HomePaths> resolve(const Overrides& overrides);

// Refuse the home folder of `paths` when another local user could change
// it: owned by someone other than the user or root, writable by group or
// others, or a symbolic link someone else owns (a link of one's own is
// followed and its target checked; the home's parent is not checked). A
// missing home passes: it is created 0700 on first use. Fails with config
// (naming the path, its mode and owner, and the chmod/chown fix) or io.
Result<void> check(const HomePaths& paths);

} // namespace claudegate::home
