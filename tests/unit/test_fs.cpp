// SPDX-License-Identifier: Apache-2.0
#include "claudegate/fs.hpp"

#include "scratch_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

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
  CHECK_FALSE(fs::read(scratch.path()));
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
    CHECK_FALSE(fs::read_private(path));
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
