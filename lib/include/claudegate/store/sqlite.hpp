// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/store/store.hpp"

#include <filesystem>
#include <memory>

// The SQLite backend of store::Store (lib/store/sqlite/).
namespace claudegate::store {

// Open (creating, mode 0600) the SQLite store at `path`: WAL, busy_timeout,
// foreign keys, migrations to the current schema. Refuses a file from a
// newer claudegate (storage, never altered), a corrupt or unreadable file
// (storage, with the path and what to do), and a file, -wal or -shm that is
// a symbolic link, owned by another user or writable by group/others
// (config, with the chmod/chown fix: fs::check_private).
Result<std::unique_ptr<Store>> open_sqlite(const std::filesystem::path& path);

// The schema version this build reads and writes (PRAGMA user_version).
int schema_version();

} // namespace claudegate::store
