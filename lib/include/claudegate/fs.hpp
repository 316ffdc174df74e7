// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/errors.hpp"

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace claudegate::fs {

namespace stdfs = std::filesystem;

// Write `content` to `path` atomically (temp file in the same folder with
// mode `mode`, fsync, rename, fsync the folder): readers see the old or the
// new file, never half. Fails with io naming the path and errno text.
Result<void> write_atomic(const stdfs::path& path, std::string_view content, stdfs::perms mode);

// Whole file `path`, at most `max_bytes`. Fails with io.
Result<std::string> read(const stdfs::path& path, std::size_t max_bytes = 16 * 1024 * 1024);

// Like read, but first refuses (io, with the chmod fix) a file that is
// group- or world-accessible, as ssh does for private keys.
Result<std::string> read_private(const stdfs::path& path);

// Create folder `path` (and parents) with mode 0700 if missing. Fails with io.
Result<void> create_private_dir(const stdfs::path& path);

} // namespace claudegate::fs
