// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace claudegate::fs {

namespace stdfs = std::filesystem;

// Owns a file descriptor so every early return closes it.
class FileDescriptor {
public:
  explicit FileDescriptor(int fd) : m_fd(fd) {}
  ~FileDescriptor();
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  FileDescriptor(FileDescriptor&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  FileDescriptor& operator=(FileDescriptor&&) = delete;

  int get() const { return m_fd; }
  bool valid() const { return m_fd >= 0; }
  // Hand the descriptor over (to fdopen): this object no longer closes it.
  int release() { return std::exchange(m_fd, -1); }
  // Close now; the errno of a failed close, else 0 (a failed close can lose data).
  int close();

private:
  int m_fd;
};

// ---- paths claudegate trusts: home, keys, store, config, log ------------
//
// Like ssh's StrictModes: such a path must belong to the effective user (or
// to root, whom no other user can impersonate) and must not be writable by
// group or others, since whoever can write it can mint tokens or grants.
// Refusals fail with config (exit 2) and name the path, its mode and owner
// and the chmod/chown that fixes it.

// What a trusted path is: the fix suggested is chmod 700 or chmod 600.
enum class PathKind { directory, file };

// A symbolic link at the path itself: refused (db, keys, log: a link
// swapped in by someone else would redirect them), or followed when the
// link belongs to the user or root (home, config), the target then checked.
enum class Links { refuse, follow_own };

struct TrustedPath {
  std::string_view role; // names the path in messages: "home", "keys folder", "store", …
  PathKind kind = PathKind::file;
  Links links = Links::refuse;
};

// Check `path` as `trust` says, by lstat/stat. A missing path passes (there
// is nothing to trust yet). Fails with config (symlink, foreign owner,
// group/other-writable) or io (cannot inspect).
Result<void> check_private(const stdfs::path& path, const TrustedPath& trust);

// Check the open descriptor `fd` of `path` (owner and write bits): what is
// checked is what will be read, whatever happens to the name meanwhile.
// Fails with config or io.
Result<void> check_private(int fd, const stdfs::path& path, const TrustedPath& trust);

// open(2) `path` with `flags` (and `mode` when creating), adding O_NOFOLLOW
// and O_CLOEXEC unless `trust.links` is follow_own, then check the
// descriptor. Fails with config (a symlink, foreign owner, writable by
// group/others) or io (cannot open).
Result<FileDescriptor> open_private(const stdfs::path& path, const TrustedPath& trust, int flags,
                                    mode_t mode = 0600);

// Whole file `path` opened and checked as open_private does, at most
// `max_bytes`. Fails with config or io.
Result<std::string> read_trusted(const stdfs::path& path, const TrustedPath& trust,
                                 std::size_t max_bytes = 16 * 1024 * 1024);

// read_trusted, and also refuses (io) a file group or others can read at
// all, as ssh does for private keys.
Result<std::string> read_private(const stdfs::path& path, const TrustedPath& trust);

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
