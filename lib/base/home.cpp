// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/home.hpp"

#include "claudegate/base/fs.hpp"

#include <cstdlib>
#include <string_view>

namespace claudegate::home {

namespace {

// An environment variable's value; unset and empty are alike, as in most shells' tools.
std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    return std::nullopt;
  }
  return std::string(value);
}

// A flag or env value that was given and is not empty.
std::optional<std::string> given(const std::optional<std::string>& value) {
  if (!value || value->empty()) {
    return std::nullopt;
  }
  return value;
}

// ${XDG_DATA_HOME:-~/.local/share}/claudegate; the XDG spec says to ignore a relative XDG_DATA_HOME.
Result<std::filesystem::path> default_home() {
  if (const auto xdg = env("XDG_DATA_HOME"); xdg && std::filesystem::path(*xdg).is_absolute()) {
    return std::filesystem::path(*xdg) / "claudegate";
  }
  if (const auto user_home = env("HOME")) {
    return std::filesystem::path(*user_home) / ".local" / "share" / "claudegate";
  }
  return fail(Errc::config, "cannot find a home folder (neither HOME nor XDG_DATA_HOME is set); "
                            "pass --home DIR or set CLAUDEGATE_HOME");
}

} // namespace

Result<HomePaths> resolve(const Overrides& overrides) {
  HomePaths paths;
  if (const auto home = given(overrides.home)) {
    paths.home = *home;
  } else {
    auto fallback = default_home();
    if (!fallback) {
      return propagate(fallback);
    }
    paths.home = std::move(*fallback);
  }
  paths.keys_dir = paths.home / "keys";
  const auto db = given(overrides.db);
  paths.db = db ? *db : (paths.home / "claudegate.db").string();
  paths.db_explicit = db.has_value();
  const auto config = given(overrides.config);
  paths.config = config ? std::filesystem::path(*config) : paths.home / "claudegate.toml";
  paths.config_explicit = config.has_value();
  return paths;
}

Result<void> check(const HomePaths& paths) {
  return fs::check_private(paths.home, {"home", fs::PathKind::directory, fs::Links::follow_own});
}

} // namespace claudegate::home
