// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/fs.hpp"

#include "scratch_dir.hpp"

#include <doctest/doctest.h>

#include <fmt/format.h>

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace claudegate;
using claudegate::test::mode_of;
using claudegate::test::ScratchDir;
namespace stdfs = std::filesystem;

namespace {

void write_plain(const stdfs::path& path, const std::string& content, unsigned mode) {
  std::ofstream(path) << content;
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

std::size_t entries_in(const stdfs::path& dir) {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : stdfs::directory_iterator(dir)) {
    ++count;
  }
  return count;
}

} // namespace

TEST_CASE("fs: write_atomic creates the file with the exact mode") {
  ScratchDir scratch;
  const auto path = scratch.path() / "key.pem";
  const mode_t old_umask = ::umask(077);
  const auto written = fs::write_atomic(path, "secret\n",
                                        stdfs::perms::owner_read | stdfs::perms::owner_write
                                            | stdfs::perms::group_read | stdfs::perms::others_read);
  ::umask(old_umask);
  REQUIRE(written);
  CHECK(mode_of(path) == 0644);
  CHECK(fs::read(path).value() == "secret\n");

  REQUIRE(fs::write_atomic(scratch.path() / "private", "x",
                           stdfs::perms::owner_read | stdfs::perms::owner_write));
  CHECK(mode_of(scratch.path() / "private") == 0600);
}

TEST_CASE("fs: write_atomic replaces an existing file and leaves no temp file") {
  ScratchDir scratch;
  const auto path = scratch.path() / "index.json";
  REQUIRE(fs::write_atomic(path, "old", stdfs::perms::owner_read | stdfs::perms::owner_write));
  REQUIRE(fs::write_atomic(path, "new content", stdfs::perms::owner_read | stdfs::perms::owner_write));
  CHECK(fs::read(path).value() == "new content");
  CHECK(entries_in(scratch.path()) == 1);
}

TEST_CASE("fs: write_atomic writes empty and large contents") {
  ScratchDir scratch;
  const std::string big(3 * 1024 * 1024 + 7, 'z');
  REQUIRE(
      fs::write_atomic(scratch.path() / "big", big, stdfs::perms::owner_read | stdfs::perms::owner_write));
  CHECK(fs::read(scratch.path() / "big").value() == big);
  REQUIRE(
      fs::write_atomic(scratch.path() / "empty", "", stdfs::perms::owner_read | stdfs::perms::owner_write));
  CHECK(fs::read(scratch.path() / "empty").value().empty());
}

TEST_CASE("fs: write_atomic fails with io in a missing folder") {
  ScratchDir scratch;
  const auto path = scratch.path() / "missing" / "file";
  const auto written = fs::write_atomic(path, "x", stdfs::perms::owner_read | stdfs::perms::owner_write);
  REQUIRE_FALSE(written);
  CHECK(written.error().code == Errc::io);
  CHECK(written.error().message.find((scratch.path() / "missing").string()) != std::string::npos);
}

TEST_CASE("fs: write_atomic removes its temp file when the rename fails") {
  ScratchDir scratch;
  // A non-empty folder at the target makes rename fail after the data was written.
  const auto target = scratch.path() / "target";
  stdfs::create_directory(target);
  write_plain(target / "inside", "x", 0600);
  const auto written = fs::write_atomic(target, "data", stdfs::perms::owner_read | stdfs::perms::owner_write);
  REQUIRE_FALSE(written);
  CHECK(written.error().code == Errc::io);
  CHECK(entries_in(scratch.path()) == 1);
}

TEST_CASE("fs: read returns the content and refuses missing files and oversize input") {
  ScratchDir scratch;
  write_plain(scratch.path() / "a.txt", "hello", 0644);
  CHECK(fs::read(scratch.path() / "a.txt").value() == "hello");
  const auto too_big = fs::read(scratch.path() / "a.txt", 4);
  REQUIRE_FALSE(too_big);
  CHECK(too_big.error().message.find("larger than 4 bytes") != std::string::npos);
  const auto missing = fs::read(scratch.path() / "nope");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Errc::io);
  CHECK(missing.error().message.find("nope") != std::string::npos);
  const auto folder = fs::read(scratch.path());
  REQUIRE_FALSE(folder);
  CHECK(folder.error().code == Errc::io);
  CHECK(folder.error().message.find(scratch.path().string()) != std::string::npos);
}

TEST_CASE("fs: read_private accepts 0600 and 0400") {
  ScratchDir scratch;
  write_plain(scratch.path() / "k600", "key", 0600);
  write_plain(scratch.path() / "k400", "key", 0400);
  CHECK(fs::read_private(scratch.path() / "k600").value() == "key");
  CHECK(fs::read_private(scratch.path() / "k400").value() == "key");
}

TEST_CASE("fs: read_private refuses a group- or world-readable file with the chmod fix") {
  ScratchDir scratch;
  const auto path = scratch.path() / "key.pem";
  write_plain(path, "key", 0644);
  const auto refused = fs::read_private(path);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::io);
  CHECK(refused.error().message.find("readable by group/others (mode 0644)") != std::string::npos);
  CHECK(refused.error().message.find("run: chmod 600 " + path.string()) != std::string::npos);
}

TEST_CASE("fs: read_private refuses any group or other permission bit") {
  ScratchDir scratch;
  for (unsigned mode : {0640U, 0604U, 0620U, 0601U, 0610U}) {
    CAPTURE(mode);
    const auto path = scratch.path() / ("key" + std::to_string(mode));
    write_plain(path, "key", mode);
    const auto refused = fs::read_private(path);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::io);
    CHECK(refused.error().message.find(fmt::format("(mode {:04o})", mode)) != std::string::npos);
    CHECK(refused.error().message.find("run: chmod 600 " + path.string()) != std::string::npos);
  }
}

TEST_CASE("fs: read_private quotes a path with spaces in the fix") {
  ScratchDir scratch;
  const auto path = scratch.path() / "my key.pem";
  write_plain(path, "key", 0640);
  const auto refused = fs::read_private(path);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("chmod 600 '" + path.string() + "'") != std::string::npos);
}

TEST_CASE("fs: create_private_dir makes parents with mode 0700") {
  ScratchDir scratch;
  const auto deep = scratch.path() / "a" / "b" / "c";
  const mode_t old_umask = ::umask(022);
  const auto made = fs::create_private_dir(deep);
  ::umask(old_umask);
  REQUIRE(made);
  CHECK(stdfs::is_directory(deep));
  CHECK(mode_of(deep) == 0700);
  CHECK(mode_of(scratch.path() / "a") == 0700);
  CHECK(fs::create_private_dir(deep)); // idempotent
}

TEST_CASE("fs: create_private_dir leaves an existing folder's mode alone") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "shared";
  stdfs::create_directory(dir);
  ::chmod(dir.c_str(), 0750);
  REQUIRE(fs::create_private_dir(dir));
  CHECK(mode_of(dir) == 0750);
}

TEST_CASE("fs: create_private_dir fails when a file is in the way") {
  ScratchDir scratch;
  write_plain(scratch.path() / "file", "x", 0600);
  const auto made = fs::create_private_dir(scratch.path() / "file" / "sub");
  REQUIRE_FALSE(made);
  CHECK(made.error().code == Errc::io);
  CHECK(made.error().message.find("in the way") != std::string::npos);
}

// ---- trusted paths: owner, write bits, links ---------------------------------

namespace {

const fs::TrustedPath k_dir{"home", fs::PathKind::directory, fs::Links::refuse};
const fs::TrustedPath k_file{"store", fs::PathKind::file, fs::Links::refuse};
const fs::TrustedPath k_followed{"config file", fs::PathKind::file, fs::Links::follow_own};

bool has(const Error& error, const std::string& text) {
  return error.message.find(text) != std::string::npos;
}

std::string my_name() {
  const passwd* entry = ::getpwuid(::geteuid());
  return entry != nullptr ? entry->pw_name : "uid " + std::to_string(::geteuid());
}

} // namespace

TEST_CASE("fs: check_private accepts the user's private and read-only-shared paths") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "home";
  stdfs::create_directory(dir);
  for (unsigned mode : {0700U, 0750U, 0755U}) {
    CAPTURE(mode);
    ::chmod(dir.c_str(), mode);
    CHECK(fs::check_private(dir, k_dir));
  }
  write_plain(dir / "f", "x", 0644);
  CHECK(fs::check_private(dir / "f", k_file));
  CHECK(fs::check_private(dir / "missing", k_file)); // nothing there to trust yet
}

TEST_CASE("fs: check_private refuses a world-writable folder with the chmod 700 fix") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "home";
  stdfs::create_directory(dir);
  ::chmod(dir.c_str(), 0777);
  const auto refused = fs::check_private(dir, k_dir);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::config);
  const std::string expected = "home " + dir.string() + " is writable by group and others (mode 0777, owner "
                               + my_name() + "); run: chmod 700 " + dir.string();
  CHECK(refused.error().message == expected);
  ::chmod(dir.c_str(), 01773); // sticky does not help: others still add entries
  const auto sticky = fs::check_private(dir, k_dir);
  REQUIRE_FALSE(sticky);
  CHECK(sticky.error().code == Errc::config);
  CHECK(has(sticky.error(), "(mode 1773, owner " + my_name() + "); run: chmod 700 " + dir.string()));
}

TEST_CASE("fs: check_private refuses a group- or other-writable file with the chmod 600 fix") {
  ScratchDir scratch;
  const auto path = scratch.path() / "claudegate.db";
  for (unsigned mode : {0666U, 0620U, 0602U}) {
    CAPTURE(mode);
    write_plain(path, "x", mode);
    const auto refused = fs::check_private(path, k_file);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::config);
    CHECK(has(refused.error(), "store " + path.string() + " is writable by"));
    CHECK(has(refused.error(), fmt::format("(mode {:04o}, owner {})", mode, my_name())));
    CHECK(has(refused.error(), "run: chmod 600 " + path.string()));
  }
}

TEST_CASE("fs: check_private refuses a symbolic link, even to a safe file") {
  ScratchDir scratch;
  const auto target = scratch.path() / "real.db";
  const auto link = scratch.path() / "claudegate.db";
  write_plain(target, "x", 0600);
  stdfs::create_symlink(target, link);
  const auto refused = fs::check_private(link, k_file);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::config);
  CHECK(has(refused.error(), "store " + link.string() + " is a symbolic link (to " + target.string()));
  stdfs::remove(target); // a dangling link is no better
  const auto dangling = fs::check_private(link, k_file);
  REQUIRE_FALSE(dangling);
  CHECK(dangling.error().code == Errc::config);
  CHECK(has(dangling.error(), "store " + link.string() + " is a symbolic link"));
}

TEST_CASE("fs: a link of one's own is followed where allowed, and its target checked") {
  ScratchDir scratch;
  const auto target = scratch.path() / "real.toml";
  const auto link = scratch.path() / "claudegate.toml";
  write_plain(target, "issuer = \"x\"\n", 0644);
  stdfs::create_symlink(target, link);
  CHECK(fs::check_private(link, k_followed));
  CHECK(fs::read_trusted(link, k_followed).value() == "issuer = \"x\"\n");
  ::chmod(target.c_str(), 0666);
  const auto refused = fs::read_trusted(link, k_followed);
  REQUIRE_FALSE(refused);
  CHECK(has(refused.error(), "config file " + link.string() + " is writable by group and others"));
  const auto checked = fs::check_private(link, k_followed);
  REQUIRE_FALSE(checked);
  CHECK(checked.error().code == Errc::config);
  CHECK(checked.error().message == refused.error().message);
}

TEST_CASE("fs: open_private never follows a link, nor creates its target") {
  ScratchDir scratch;
  const auto target = scratch.path() / "victim";
  const auto link = scratch.path() / "requests.log";
  stdfs::create_symlink(target, link);
  const auto refused = fs::open_private(link, {"log file", fs::PathKind::file, fs::Links::refuse},
                                        O_WRONLY | O_APPEND | O_CREAT);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::config);
  CHECK(has(refused.error(), "log file " + link.string() + " is a symbolic link"));
  CHECK_FALSE(stdfs::exists(target));
}

TEST_CASE("fs: open_private creates a missing file 0600 and accepts /dev/null") {
  ScratchDir scratch;
  const auto path = scratch.path() / "requests.log";
  const mode_t old_umask = ::umask(0);
  auto created = fs::open_private(path, k_file, O_WRONLY | O_APPEND | O_CREAT);
  ::umask(old_umask);
  REQUIRE(created);
  CHECK(mode_of(path) == 0600);
  // A root-owned device holds nothing to forge, though its mode is 0666.
  CHECK(fs::open_private("/dev/null", k_file, O_WRONLY | O_APPEND));
}

TEST_CASE("fs: read_trusted and read_private check the file they read") {
  ScratchDir scratch;
  const auto path = scratch.path() / "key.pem";
  write_plain(path, "key", 0666);
  const fs::TrustedPath key{"key file", fs::PathKind::file, fs::Links::refuse};
  const auto writable = fs::read_private(path, key);
  REQUIRE_FALSE(writable);
  CHECK(writable.error().code == Errc::config); // writable: anyone could plant a key
  CHECK(has(writable.error(), "key file " + path.string() + " is writable by group and others"));
  ::chmod(path.c_str(), 0644);
  CHECK(fs::read_trusted(path, key).value() == "key");
  const auto readable = fs::read_private(path, key);
  REQUIRE_FALSE(readable);
  CHECK(readable.error().code == Errc::io); // readable: the ssh rule, as before
  ::chmod(path.c_str(), 0600);
  CHECK(fs::read_private(path, key).value() == "key");
  const auto missing = fs::read_trusted(scratch.path() / "nope", key);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Errc::io);
  CHECK(has(missing.error(), "cannot open key file " + (scratch.path() / "nope").string()));
}

// Skipped (doctest counts it) unless root: changing an owner needs root.
TEST_CASE("fs: a path owned by another user is refused with the chown fix (root only)"
          * doctest::skip(::geteuid() != 0)) {
  ScratchDir scratch;
  const auto path = scratch.path() / "claudegate.db";
  write_plain(path, "x", 0600);
  REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);
  const auto refused = fs::check_private(path, k_file);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::config);
  CHECK(has(refused.error(), "store " + path.string() + " is not owned by root (mode 0600, owner "));
  CHECK(has(refused.error(), "run: chown root " + path.string()));
  ::chmod(path.c_str(), 0666);
  CHECK(has(fs::check_private(path, k_file).error(),
            "run: chown root " + path.string() + " && chmod 600 " + path.string()));
  // A link someone else owns is not followed even where one's own would be.
  const auto link = scratch.path() / "claudegate.toml";
  write_plain(scratch.path() / "real.toml", "", 0600);
  stdfs::create_symlink(scratch.path() / "real.toml", link);
  REQUIRE(::lchown(link.c_str(), 65534, 65534) == 0);
  const auto foreign_link = fs::check_private(link, k_followed);
  REQUIRE_FALSE(foreign_link);
  CHECK(has(foreign_link.error(), "is a symbolic link not owned by root"));
}
