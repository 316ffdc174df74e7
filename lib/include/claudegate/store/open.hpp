// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/store/store.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

// Where the store lives, as --db, CLAUDEGATE_DB or the config's store key
// name it: a file path or "sqlite:PATH" (the embedded SQLite backend), or a
// libpq connection URI "postgresql://…" / "postgres://…" (the PostgreSQL
// backend, for replicas).
namespace claudegate::store {

struct StoreLocation {
  enum class Backend { sqlite, postgresql };
  Backend backend = Backend::sqlite;
  std::filesystem::path path; // sqlite
  std::string uri;            // postgresql, as given (may hold a password)

  // For messages, logs and /metrics: the path, or the URI with any
  // password replaced by "***". Never the password.
  std::string display() const;
};

// Read `text`. Fails with config when empty, "sqlite:" with no path, or a
// postgresql URI libpq cannot parse (the message shows the URI masked).
Result<StoreLocation> parse_store_location(std::string_view text);

// Open the store at `location` (SQLite: open_sqlite; PostgreSQL:
// open_postgres). Errors name the location by display(), never the password.
Result<std::unique_ptr<Store>> open_store(const StoreLocation& location);

} // namespace claudegate::store
