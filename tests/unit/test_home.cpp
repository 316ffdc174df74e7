// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/home.hpp"

#include "scratch_dir.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

using namespace claudegate;

namespace {

// Sets (or unsets) an environment variable for one scope, then restores it.
class EnvOverride {
public:
  EnvOverride(const char* name, std::optional<std::string> value) : m_name(name) {
    if (const char* old = std::getenv(name)) {
      m_old = old;
    }
    apply(value);
  }
  ~EnvOverride() { apply(m_old); }
  EnvOverride(const EnvOverride&) = delete;
  EnvOverride& operator=(const EnvOverride&) = delete;

private:
  void apply(const std::optional<std::string>& value) {
    if (value) {
      ::setenv(m_name, value->c_str(), 1);
    } else {
      ::unsetenv(m_name);
    }
  }
  const char* m_name;
  std::optional<std::string> m_old;
};

} // namespace

TEST_CASE("home: defaults to XDG_DATA_HOME/claudegate") {
  EnvOverride xdg("XDG_DATA_HOME", "/data/xdg");
  EnvOverride home("HOME", "/home/ada");
  const auto paths = home::resolve({});
  REQUIRE(paths);
  CHECK(paths->home == "/data/xdg/claudegate");
  CHECK(paths->keys_dir == "/data/xdg/claudegate/keys");
  CHECK(paths->db == "/data/xdg/claudegate/claudegate.db");
  CHECK(paths->config == "/data/xdg/claudegate/claudegate.toml");
  CHECK_FALSE(paths->config_explicit);
}

TEST_CASE("home: falls back to ~/.local/share/claudegate") {
  EnvOverride xdg("XDG_DATA_HOME", std::nullopt);
  EnvOverride home("HOME", "/home/ada");
  CHECK(home::resolve({}).value().home == "/home/ada/.local/share/claudegate");
}

TEST_CASE("home: ignores an empty or relative XDG_DATA_HOME") {
  EnvOverride home("HOME", "/home/ada");
  {
    EnvOverride xdg("XDG_DATA_HOME", "");
    CHECK(home::resolve({}).value().home == "/home/ada/.local/share/claudegate");
  }
  {
    EnvOverride xdg("XDG_DATA_HOME", "relative/data");
    CHECK(home::resolve({}).value().home == "/home/ada/.local/share/claudegate");
  }
}

TEST_CASE("home: fails with config when neither HOME nor XDG_DATA_HOME is set") {
  EnvOverride xdg("XDG_DATA_HOME", std::nullopt);
  EnvOverride home("HOME", std::nullopt);
  const auto paths = home::resolve({});
  REQUIRE_FALSE(paths);
  CHECK(paths.error().code == Errc::config);
  CHECK(paths.error().message.find("--home") != std::string::npos);
  CHECK(home::resolve({.home = "/srv/gate", .db = {}, .config = {}}).value().home == "/srv/gate");
}

TEST_CASE("home: an explicit home moves every part") {
  EnvOverride home("HOME", "/home/ada");
  const auto paths = home::resolve({.home = "/srv/gate", .db = {}, .config = {}});
  REQUIRE(paths);
  CHECK(paths->home == "/srv/gate");
  CHECK(paths->keys_dir == "/srv/gate/keys");
  CHECK(paths->db == "/srv/gate/claudegate.db");
  CHECK(paths->config == "/srv/gate/claudegate.toml");
}

TEST_CASE("home: db and config overrides beat the home") {
  const auto paths =
      home::resolve({.home = "/srv/gate", .db = "/var/lib/gate.db", .config = "/etc/gate.toml"});
  REQUIRE(paths);
  CHECK(paths->keys_dir == "/srv/gate/keys");
  CHECK(paths->db == "/var/lib/gate.db");
  CHECK(paths->config == "/etc/gate.toml");
  CHECK(paths->config_explicit);
}

TEST_CASE("home: empty overrides count as not given") {
  EnvOverride xdg("XDG_DATA_HOME", "/data/xdg");
  const auto paths = home::resolve({.home = "", .db = "", .config = ""});
  REQUIRE(paths);
  CHECK(paths->home == "/data/xdg/claudegate");
  CHECK(paths->db == "/data/xdg/claudegate/claudegate.db");
  CHECK_FALSE(paths->config_explicit);
}

// ---- who may change the home ----------------------------------------------

namespace {

home::HomePaths at(const std::filesystem::path& dir) {
  return home::resolve({.home = dir.string(), .db = {}, .config = {}}).value();
}

} // namespace

TEST_CASE("home: check accepts a private home and a missing one") {
  test::ScratchDir scratch;
  const auto dir = scratch.path() / "home";
  CHECK(home::check(at(dir))); // created 0700 on first use
  std::filesystem::create_directory(dir);
  ::chmod(dir.c_str(), 0700);
  CHECK(home::check(at(dir)));
}

TEST_CASE("home: a home others can write is refused with exit-2 config and the chmod 700 fix") {
  test::ScratchDir scratch;
  const auto dir = scratch.path() / "home";
  std::filesystem::create_directory(dir);
  for (unsigned mode : {0777U, 01777U, 0770U}) {
    CAPTURE(mode);
    ::chmod(dir.c_str(), mode);
    const auto refused = home::check(at(dir));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::config);
    CHECK(refused.error().message.find("home " + dir.string() + " is writable by") != std::string::npos);
    CHECK(refused.error().message.find(fmt::format("mode {:04o}", mode)) != std::string::npos);
    CHECK(refused.error().message.find("run: chmod 700 " + dir.string()) != std::string::npos);
  }
}

TEST_CASE("home: a home that is one's own link is followed and its target checked") {
  test::ScratchDir scratch;
  const auto real = scratch.path() / "real";
  const auto link = scratch.path() / "home";
  std::filesystem::create_directory(real);
  ::chmod(real.c_str(), 0700);
  std::filesystem::create_directory_symlink(real, link);
  CHECK(home::check(at(link)));
  ::chmod(real.c_str(), 0777);
  CHECK_FALSE(home::check(at(link)));
}

// Skipped (doctest counts it) unless root: changing an owner needs root.
TEST_CASE("home: a home owned by another user is refused with the chown fix (root only)"
          * doctest::skip(::geteuid() != 0)) {
  test::ScratchDir scratch;
  const auto dir = scratch.path() / "home";
  std::filesystem::create_directory(dir);
  ::chmod(dir.c_str(), 0700);
  REQUIRE(::chown(dir.c_str(), 65534, 65534) == 0);
  const auto refused = home::check(at(dir));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::config);
  CHECK(refused.error().message.find("is not owned by root (mode 0700, owner ") != std::string::npos);
  CHECK(refused.error().message.find("run: chown root " + dir.string()) != std::string::npos);
}
