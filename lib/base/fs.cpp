// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/fs.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <random>
#include <system_error>
#include <utility>
#include <vector>

namespace claudegate::fs {

FileDescriptor::~FileDescriptor() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

int FileDescriptor::close() {
  const int fd = std::exchange(m_fd, -1);
  return ::close(fd) == 0 ? 0 : errno;
}

namespace {

constexpr std::size_t k_private_max_bytes = 1024 * 1024;
constexpr int k_temp_attempts = 32;

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

std::unexpected<Error> io_fail(std::string_view what, const stdfs::path& path, int err) {
  return fail(Errc::io, fmt::format("cannot {} {} ({})", what, path.string(), errno_text(err)));
}

// `text` quoted for a shell, so a suggested command can be pasted as is.
std::string shell_quote(const std::string& text) {
  if (text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+:@")
      == std::string::npos) {
    return text;
  }
  std::string out = "'";
  for (char c : text) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

mode_t to_mode(stdfs::perms perms) {
  return static_cast<mode_t>(perms & stdfs::perms::mask);
}

struct TempFile {
  stdfs::path path;
  FileDescriptor fd;
};

// A fresh hidden temp file next to `target`, created exclusively with `mode`.
Result<TempFile> create_temp(const stdfs::path& target, mode_t mode) {
  std::random_device entropy;
  const stdfs::path dir = target.parent_path();
  for (int attempt = 0; attempt < k_temp_attempts; ++attempt) {
    const std::string name =
        fmt::format(".{}.tmp-{}-{:08x}", target.filename().string(), ::getpid(), entropy());
    stdfs::path path = dir / name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd >= 0) {
      return TempFile{std::move(path), FileDescriptor(fd)};
    }
    if (errno != EEXIST) {
      return io_fail("create a temporary file in", dir.empty() ? stdfs::path(".") : dir, errno);
    }
  }
  return io_fail("create a temporary file for", target, EEXIST);
}

// 0, or the errno of the write that failed.
int write_all(int fd, std::string_view content) {
  while (!content.empty()) {
    const ssize_t written = ::write(fd, content.data(), content.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno;
    }
    content.remove_prefix(static_cast<std::size_t>(written));
  }
  return 0;
}

// Flush the folder entry so the rename survives a power cut.
Result<void> sync_dir(const stdfs::path& dir) {
  FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    return io_fail("open folder", dir, errno);
  }
  if (::fsync(fd.get()) != 0) {
    return io_fail("sync folder", dir, errno);
  }
  return {};
}

Result<void> fill_and_replace(TempFile& temp, const stdfs::path& target, std::string_view content,
                              mode_t mode) {
  // The exact mode, whatever the umask took away.
  if (::fchmod(temp.fd.get(), mode) != 0) {
    return io_fail("set the mode of", temp.path, errno);
  }
  if (const int err = write_all(temp.fd.get(), content); err != 0) {
    return io_fail("write", temp.path, err);
  }
  if (::fsync(temp.fd.get()) != 0) {
    return io_fail("sync", temp.path, errno);
  }
  if (const int err = temp.fd.close(); err != 0) {
    return io_fail("close", temp.path, err);
  }
  if (::rename(temp.path.c_str(), target.c_str()) != 0) {
    return io_fail("replace", target, errno);
  }
  const stdfs::path dir = target.parent_path();
  return sync_dir(dir.empty() ? stdfs::path(".") : dir);
}

Result<std::string> read_fd(int fd, const stdfs::path& path, std::size_t max_bytes) {
  std::string out;
  std::array<char, 64 * 1024> buffer{};
  for (;;) {
    const ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return io_fail("read", path, errno);
    }
    if (got == 0) {
      return out;
    }
    out.append(buffer.data(), static_cast<std::size_t>(got));
    if (out.size() > max_bytes) {
      return fail(Errc::io,
                  fmt::format("cannot read {} (larger than {} bytes); check that it is the right file",
                              path.string(), max_bytes));
    }
  }
}

Result<FileDescriptor> open_for_reading(const stdfs::path& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    return io_fail("open", path, errno);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) {
    return io_fail("inspect", path, errno);
  }
  if (S_ISDIR(info.st_mode)) {
    return io_fail("read", path, EISDIR);
  }
  return fd;
}

// Refuse `fd` when group or others have any access, as ssh does for keys.
Result<void> check_private_mode(int fd, const stdfs::path& path) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    return io_fail("inspect", path, errno);
  }
  const mode_t mode = info.st_mode & 07777;
  if ((mode & 077) == 0) {
    return {};
  }
  const std::string_view who = (mode & 044) != 0 ? "readable" : "accessible";
  const std::string quoted = shell_quote(path.string());
  return fail(Errc::io,
              fmt::format("private key file {} is {} by group/others (mode {:04o}); run: chmod 600 {}",
                          path.string(), who, mode, quoted));
}

// Create one folder with exact mode 0700; an existing folder is left as it is.
Result<void> make_private_dir(const stdfs::path& path) {
  if (::mkdir(path.c_str(), 0700) == 0) {
    if (::chmod(path.c_str(), 0700) != 0) {
      return io_fail("set the mode of folder", path, errno);
    }
    return {};
  }
  const int err = errno;
  struct stat info {};
  if (err == EEXIST && ::stat(path.c_str(), &info) == 0) {
    if (S_ISDIR(info.st_mode)) {
      return {};
    }
    return fail(Errc::io,
                fmt::format("cannot create folder {} (a file of that name is in the way); move it away",
                            path.string()));
  }
  return io_fail("create folder", path, err);
}

// ---- trusted paths -------------------------------------------------------

// The login name of `uid`, or "uid N" when it has none.
std::string user_name(uid_t uid) {
  std::array<char, 4096> buffer{};
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return fmt::format("uid {}", uid);
}

// Only the user and root can write what they own; anyone else could forge it.
bool trusted_owner(uid_t owner) {
  return owner == ::geteuid() || owner == 0;
}

std::string_view writers(mode_t mode) {
  const bool group = (mode & S_IWGRP) != 0;
  const bool others = (mode & S_IWOTH) != 0;
  return group && others ? "group and others" : (group ? "group" : "others");
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& part : parts) {
    out += (out.empty() ? "" : std::string(separator)) + part;
  }
  return out;
}

// Refuse `info` of `path` when someone other than the user or root owns it
// or group/others may write it, with the chown/chmod that fixes both.
Result<void> check_owner_and_mode(const struct stat& info, const stdfs::path& path,
                                  const TrustedPath& trust) {
  const mode_t mode = info.st_mode & 07777;
  const bool foreign = !trusted_owner(info.st_uid);
  // A root-owned device (/dev/null, a terminal) holds nothing to forge.
  const bool device = S_ISCHR(info.st_mode) && info.st_uid == 0;
  const bool writable = !device && (mode & (S_IWGRP | S_IWOTH)) != 0;
  if (!foreign && !writable) {
    return {};
  }
  const std::string me = user_name(::geteuid());
  const std::string quoted = shell_quote(path.string());
  std::vector<std::string> problems;
  std::vector<std::string> fixes;
  if (foreign) {
    problems.push_back(fmt::format("is not owned by {}", me));
    fixes.push_back(fmt::format("chown {} {}", shell_quote(me), quoted));
  }
  if (writable) {
    problems.push_back(fmt::format("is writable by {}", writers(mode)));
    fixes.push_back(fmt::format("chmod {} {}", trust.kind == PathKind::directory ? "700" : "600", quoted));
  }
  return fail(Errc::config,
              fmt::format("{} {} {} (mode {:04o}, owner {}); run: {}", trust.role, path.string(),
                          join(problems, " and "), mode, user_name(info.st_uid), join(fixes, " && ")));
}

std::string link_target(const stdfs::path& path) {
  std::error_code ec;
  const auto target = stdfs::read_symlink(path, ec);
  return ec ? std::string("?") : target.string();
}

std::unexpected<Error> symlink_refused(const stdfs::path& path, const TrustedPath& trust) {
  const std::string_view what = trust.kind == PathKind::directory ? "folder" : "file";
  return fail(Errc::config,
              fmt::format("{} {} is a symbolic link (to {}; links are not followed here, since whoever "
                          "changes the link redirects it); replace the link with the {} itself or use its "
                          "real path",
                          trust.role, path.string(), link_target(path), what));
}

std::unexpected<Error> foreign_link(const stdfs::path& path, const struct stat& link,
                                    const TrustedPath& trust) {
  const std::string me = user_name(::geteuid());
  return fail(Errc::config, fmt::format("{} {} is a symbolic link not owned by {} (to {}, owner {}); "
                                        "replace it, or if you made it run: chown -h {} {}",
                                        trust.role, path.string(), me, link_target(path),
                                        user_name(link.st_uid), shell_quote(me), shell_quote(path.string())));
}

// The stat of what `path` names under `trust.links`; nullopt when missing.
Result<std::optional<struct stat>> stat_trusted(const stdfs::path& path, const TrustedPath& trust) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) {
    return errno == ENOENT ? Result<std::optional<struct stat>>(std::nullopt)
                           : io_fail("inspect", path, errno);
  }
  if (!S_ISLNK(info.st_mode)) {
    return info;
  }
  if (trust.links == Links::refuse) {
    return symlink_refused(path, trust);
  }
  if (!trusted_owner(info.st_uid)) {
    return foreign_link(path, info, trust);
  }
  if (::stat(path.c_str(), &info) != 0) {
    return errno == ENOENT ? Result<std::optional<struct stat>>(std::nullopt)
                           : io_fail("inspect", path, errno);
  }
  return info;
}

} // namespace

Result<void> write_atomic(const stdfs::path& path, std::string_view content, stdfs::perms mode) {
  auto temp = create_temp(path, to_mode(mode));
  if (!temp) {
    return propagate(temp);
  }
  auto done = fill_and_replace(*temp, path, content, to_mode(mode));
  if (!done) {
    // Best effort: after a successful rename the temp name is already gone.
    ::unlink(temp->path.c_str());
  }
  return done;
}

Result<std::string> read(const stdfs::path& path, std::size_t max_bytes) {
  auto fd = open_for_reading(path);
  if (!fd) {
    return propagate(fd);
  }
  return read_fd(fd->get(), path, max_bytes);
}

Result<std::string> read_private(const stdfs::path& path) {
  auto fd = open_for_reading(path);
  if (!fd) {
    return propagate(fd);
  }
  // Checked on the open descriptor, so a swapped file cannot slip through.
  if (auto mode_ok = check_private_mode(fd->get(), path); !mode_ok) {
    return propagate(mode_ok);
  }
  return read_fd(fd->get(), path, k_private_max_bytes);
}

Result<void> check_private(const stdfs::path& path, const TrustedPath& trust) {
  auto info = stat_trusted(path, trust);
  if (!info || !*info) {
    return info ? Result<void>{} : propagate(info);
  }
  return check_owner_and_mode(**info, path, trust);
}

Result<void> check_private(int fd, const stdfs::path& path, const TrustedPath& trust) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    return io_fail("inspect", path, errno);
  }
  return check_owner_and_mode(info, path, trust);
}

Result<FileDescriptor> open_private(const stdfs::path& path, const TrustedPath& trust, int flags,
                                    mode_t mode) {
  if (trust.links == Links::follow_own) {
    // Whose link it is can only be seen by name; the target is checked on the descriptor.
    if (auto link_ok = stat_trusted(path, trust); !link_ok) {
      return propagate(link_ok);
    }
  } else {
    flags |= O_NOFOLLOW;
  }
  FileDescriptor fd(::open(path.c_str(), flags | O_CLOEXEC | O_NOCTTY, mode));
  if (!fd.valid()) {
    const int err = errno;
    struct stat link {};
    if (err == ELOOP && ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
      return symlink_refused(path, trust);
    }
    return io_fail(fmt::format("open {}", trust.role), path, err);
  }
  if (auto checked = check_private(fd.get(), path, trust); !checked) {
    return propagate(checked);
  }
  return fd;
}

Result<std::string> read_trusted(const stdfs::path& path, const TrustedPath& trust, std::size_t max_bytes) {
  // O_NONBLOCK: a FIFO in the way must not hang the open.
  auto fd = open_private(path, trust, O_RDONLY | O_NONBLOCK);
  if (!fd) {
    return propagate(fd);
  }
  return read_fd(fd->get(), path, max_bytes);
}

Result<std::string> read_private(const stdfs::path& path, const TrustedPath& trust) {
  auto fd = open_private(path, trust, O_RDONLY | O_NONBLOCK);
  if (!fd) {
    return propagate(fd);
  }
  if (auto mode_ok = check_private_mode(fd->get(), path); !mode_ok) {
    return propagate(mode_ok);
  }
  return read_fd(fd->get(), path, k_private_max_bytes);
}

Result<void> create_private_dir(const stdfs::path& path) {
  if (path.empty()) {
    return fail(Errc::io, "cannot create a folder with an empty name; pass a folder path");
  }
  stdfs::path prefix;
  for (const auto& part : path) {
    prefix /= part;
    if (part.empty() || part == "/") {
      continue;
    }
    if (auto made = make_private_dir(prefix); !made) {
      return made;
    }
  }
  return {};
}

} // namespace claudegate::fs
