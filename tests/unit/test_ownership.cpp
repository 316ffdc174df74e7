// SPDX-License-Identifier: Apache-2.0
// Issue 13 item 10: each place that trusts a file refuses one another local
// user could have written or redirected (fs::check_private applied).
#include "claudegate/base/config.hpp"
#include "claudegate/jose/keyring.hpp"
#include "claudegate/store/sqlite.hpp"
#include "claudegate/store/store.hpp"

#include "proxy/request_log.hpp"
#include "scratch_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace claudegate;
using claudegate::test::ScratchDir;
namespace stdfs = std::filesystem;

namespace {

constexpr UnixSeconds k_now = 1'795'428'000;

void write_file(const stdfs::path& path, const std::string& content, unsigned mode) {
  std::ofstream(path, std::ios::trunc) << content;
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

template <typename T> void refused_naming(const Result<T>& result, const std::string& text) {
  REQUIRE_FALSE(result);
  CHECK(result.error().code == Errc::config);
  CHECK_MESSAGE(result.error().message.find(text) != std::string::npos, result.error().message);
}

// A keyring with one ES256 key in `dir`; the kid.
std::string keyring_with_a_key(const stdfs::path& dir) {
  auto ring = keyring::Keyring::open(dir, k_now);
  REQUIRE_MESSAGE(ring, (ring ? "" : ring.error().message));
  auto added = ring->add(keys::Key::generate(keys::Alg::ES256).value(), keyring::Rotation::no, k_now, 0);
  REQUIRE_MESSAGE(added, (added ? "" : added.error().message));
  return added->kid;
}

} // namespace

TEST_CASE("ownership: a store file others can write is refused") {
  ScratchDir scratch;
  const auto db = scratch.path() / "claudegate.db";
  write_file(db, "", 0666);
  refused_naming(store::open_sqlite(db),
                 "store " + db.string() + " is writable by group and others (mode 0666");
  ::chmod(db.c_str(), 0600);
  CHECK(store::open_sqlite(db));
}

TEST_CASE("ownership: a -wal or -shm others can write is refused") {
  ScratchDir scratch;
  const auto db = scratch.path() / "claudegate.db";
  REQUIRE(store::open_sqlite(db));
  for (const std::string suffix : {"-wal", "-shm"}) {
    CAPTURE(suffix);
    const stdfs::path companion = db.string() + suffix;
    write_file(companion, "", 0666);
    refused_naming(store::open_sqlite(db), "store " + companion.string() + " is writable by");
    stdfs::remove(companion);
  }
}

TEST_CASE("ownership: a store that is a symbolic link is refused and its target left alone") {
  ScratchDir scratch;
  const auto db = scratch.path() / "claudegate.db";
  const auto target = scratch.path() / "elsewhere.db";
  stdfs::create_symlink(target, db);
  refused_naming(store::open_sqlite(db),
                 "store " + db.string() + " is a symbolic link (to " + target.string());
  CHECK_FALSE(stdfs::exists(target));
  REQUIRE(store::open_sqlite(target));
  refused_naming(store::open_sqlite(db), "is a symbolic link");
}

TEST_CASE("ownership: a keys folder others can write, or a link, is refused") {
  ScratchDir scratch;
  const auto keys = scratch.path() / "keys";
  keyring_with_a_key(keys);
  ::chmod(keys.c_str(), 0777);
  refused_naming(keyring::Keyring::open(keys, k_now),
                 "keys folder " + keys.string() + " is writable by group and others");
  ::chmod(keys.c_str(), 0700);
  stdfs::rename(keys, scratch.path() / "theirs");
  stdfs::create_directory_symlink(scratch.path() / "theirs", keys);
  refused_naming(keyring::Keyring::open(keys, k_now), "keys folder " + keys.string() + " is a symbolic link");
}

TEST_CASE("ownership: a key file or index others can write, or a link, is refused") {
  ScratchDir scratch;
  const auto keys = scratch.path() / "keys";
  const auto key = keys / (keyring_with_a_key(keys) + ".pem");
  ::chmod(key.c_str(), 0666);
  refused_naming(keyring::Keyring::open(keys, k_now), "key file " + key.string() + " is writable by");
  ::chmod(key.c_str(), 0600);
  stdfs::rename(key, scratch.path() / "key.pem");
  stdfs::create_symlink(scratch.path() / "key.pem", key);
  refused_naming(keyring::Keyring::open(keys, k_now), "key file " + key.string() + " is a symbolic link");
  stdfs::remove(key);
  stdfs::rename(scratch.path() / "key.pem", key);
  CHECK(keyring::Keyring::open(keys, k_now));
  ::chmod((keys / "index.json").c_str(), 0622);
  refused_naming(keyring::Keyring::open(keys, k_now),
                 "keys index " + (keys / "index.json").string() + " is writable");
  ::chmod((keys / "index.json").c_str(), 0600);
  stdfs::rename(keys / "index.json", scratch.path() / "index.json");
  stdfs::create_symlink(scratch.path() / "index.json", keys / "index.json");
  refused_naming(keyring::Keyring::open(keys, k_now),
                 "keys index " + (keys / "index.json").string() + " is a symbolic");
}

TEST_CASE("ownership: a config file others can write is refused") {
  ScratchDir scratch;
  const auto path = scratch.path() / "claudegate.toml";
  write_file(path, "issuer = \"mine\"\n", 0666);
  refused_naming(config::load(path, config::Required::no), "config file " + path.string() + " is writable");
  ::chmod(path.c_str(), 0644);
  CHECK(config::load(path, config::Required::yes).value().issuer == "mine");
}

TEST_CASE("ownership: the request log is never opened through a link") {
  ScratchDir scratch;
  const auto log = scratch.path() / "requests.log";
  const auto target = scratch.path() / "victim";
  write_file(target, "precious\n", 0600);
  stdfs::create_symlink(target, log);
  proxy::RequestLog request_log;
  refused_naming(request_log.open(log), "log file " + log.string() + " is a symbolic link");
  std::ifstream in(target);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "precious\n");
}

// Skipped (doctest counts it) unless root: changing an owner needs root.
TEST_CASE("ownership: files another user owns are refused (root only)" * doctest::skip(::geteuid() != 0)) {
  ScratchDir scratch;
  const auto db = scratch.path() / "claudegate.db";
  REQUIRE(store::open_sqlite(db));
  REQUIRE(::chown(db.c_str(), 65534, 65534) == 0);
  refused_naming(store::open_sqlite(db), "store " + db.string() + " is not owned by root");
  const auto keys = scratch.path() / "keys";
  const auto key = keys / (keyring_with_a_key(keys) + ".pem");
  REQUIRE(::chown(key.c_str(), 65534, 65534) == 0);
  refused_naming(keyring::Keyring::open(keys, k_now), "run: chown root " + key.string());
}
