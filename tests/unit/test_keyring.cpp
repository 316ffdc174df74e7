// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/keyring.hpp"

#include "claudegate/base/fs.hpp"

#include "scratch_dir.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace claudegate;
using claudegate::test::mode_of;
using claudegate::test::ScratchDir;
namespace stdfs = std::filesystem;

namespace {

constexpr UnixSeconds k_now = 1'795'428'000;
constexpr std::int64_t k_retire_after = 86400 + 60;

keys::Key make_key(keys::Alg alg = keys::Alg::ES256) {
  auto key = keys::Key::generate(alg);
  REQUIRE(key);
  return *key;
}

keyring::Keyring open_ring(const stdfs::path& dir, UnixSeconds now = k_now) {
  auto ring = keyring::Keyring::open(dir, now);
  REQUIRE_MESSAGE(ring, (ring ? "" : ring.error().message));
  return std::move(*ring);
}

const keyring::KeyRecord& record_of(const keyring::Keyring& ring, const std::string& kid) {
  for (const auto& record : ring.records()) {
    if (record.kid == kid) {
      return record;
    }
  }
  FAIL("no record for kid " << kid);
  return ring.records().front();
}

nlohmann::json read_index(const stdfs::path& dir) {
  std::ifstream in(dir / "index.json");
  return nlohmann::json::parse(in);
}

void write_file(const stdfs::path& path, const std::string& content) {
  std::ofstream(path, std::ios::trunc) << content;
  ::chmod(path.c_str(), 0600);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("keyring: a missing folder is an empty ring without a signer") {
  ScratchDir scratch;
  const auto ring = open_ring(scratch.path() / "keys");
  CHECK(ring.records().empty());
  CHECK(ring.verification_keys().empty());
  CHECK(ring.public_keys().empty());
  const auto signer = ring.signer();
  REQUIRE_FALSE(signer);
  CHECK(signer.error().code == Errc::config);
  CHECK(signer.error().message == "no signing key yet; run: claudegate keygen");
  CHECK_FALSE(stdfs::exists(scratch.path() / "keys"));
}

TEST_CASE("keyring: the first key becomes active and survives a reopen") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key key = make_key();
  const auto record = ring.add(key, keyring::Rotation::no, k_now, k_retire_after);
  REQUIRE(record);
  CHECK(record->kid == key.kid());
  CHECK(record->state == keyring::KeyState::active);
  CHECK(record->alg == keys::Alg::ES256);
  CHECK(record->bits == key.bits());
  CHECK(record->created_at == k_now);
  CHECK(record->file == key.kid() + ".pem");
  CHECK(ring.signer().value()->kid() == key.kid());

  const auto reopened = open_ring(dir, k_now + 5);
  REQUIRE(reopened.records().size() == 1);
  CHECK(reopened.records()[0].state == keyring::KeyState::active);
  CHECK(reopened.records()[0].created_at == k_now);
  const keys::Key* signer = reopened.signer().value();
  CHECK(signer->kid() == key.kid());
  CHECK(signer->has_private());
  CHECK(reopened.verification_keys().find(key.kid()) != nullptr);
}

TEST_CASE("keyring: adding a second key without rotation fails with config") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key first = make_key();
  REQUIRE(ring.add(first, keyring::Rotation::no, k_now, k_retire_after));
  const keys::Key second = make_key();
  const auto refused = ring.add(second, keyring::Rotation::no, k_now, k_retire_after);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::config);
  CHECK(contains(refused.error().message, "--rotate"));
  CHECK(ring.records().size() == 1);
  CHECK(ring.signer().value()->kid() == first.kid());
  CHECK_FALSE(stdfs::exists(dir / (second.kid() + ".pem")));
}

TEST_CASE("keyring: adding a kid that is already there fails with config") {
  ScratchDir scratch;
  auto ring = open_ring(scratch.path() / "keys");
  const keys::Key key = make_key();
  REQUIRE(ring.add(key, keyring::Rotation::no, k_now, k_retire_after));
  const auto again = ring.add(key, keyring::Rotation::yes, k_now, k_retire_after);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == Errc::config);
  CHECK(contains(again.error().message, "already in the keyring"));
}

TEST_CASE("keyring: a public-only key cannot be added") {
  ScratchDir scratch;
  auto ring = open_ring(scratch.path() / "keys");
  const keys::Key pub = make_key().public_only().value();
  const auto refused = ring.add(pub, keyring::Rotation::no, k_now, k_retire_after);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::config);
}

TEST_CASE("keyring: rotation publishes the old key until retire_at") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key old_key = make_key();
  const keys::Key new_key = make_key();
  REQUIRE(ring.add(old_key, keyring::Rotation::no, k_now, k_retire_after));
  const auto added = ring.add(new_key, keyring::Rotation::yes, k_now + 100, k_retire_after);
  REQUIRE(added);
  CHECK(added->state == keyring::KeyState::active);
  const auto& old_record = record_of(ring, old_key.kid());
  CHECK(old_record.state == keyring::KeyState::published);
  CHECK(old_record.published_at == k_now + 100);
  CHECK(old_record.retire_at == k_now + 100 + k_retire_after);
  CHECK(ring.signer().value()->kid() == new_key.kid());
  CHECK(ring.verification_keys().size() == 2);
  CHECK(ring.public_keys().size() == 2);

  const auto before = open_ring(dir, k_now + 100 + k_retire_after - 1);
  CHECK(record_of(before, old_key.kid()).state == keyring::KeyState::published);
  CHECK(before.verification_keys().find(old_key.kid()) != nullptr);
  CHECK(before.signer().value()->kid() == new_key.kid());
}

TEST_CASE("keyring: reopening at retire_at retires the old key and persists it") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key old_key = make_key();
  const keys::Key new_key = make_key();
  REQUIRE(ring.add(old_key, keyring::Rotation::no, k_now, k_retire_after));
  REQUIRE(ring.add(new_key, keyring::Rotation::yes, k_now, k_retire_after));

  const auto later = open_ring(dir, k_now + k_retire_after);
  CHECK(record_of(later, old_key.kid()).state == keyring::KeyState::retired);
  CHECK(later.verification_keys().find(old_key.kid()) == nullptr);
  CHECK(later.verification_keys().size() == 1);
  REQUIRE(later.public_keys().size() == 1);
  CHECK(later.public_keys()[0]->kid() == new_key.kid());

  const auto index = read_index(dir);
  CHECK(index[0]["state"] == "retired");
  CHECK(index[1]["state"] == "active");
  // Persisted: even an earlier clock now sees it retired, and its file is no longer needed.
  stdfs::remove(dir / (old_key.kid() + ".pem"));
  CHECK(record_of(open_ring(dir, k_now), old_key.kid()).state == keyring::KeyState::retired);
}

TEST_CASE("keyring: key files are 0600, the index 0600 and the folder 0700") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "home" / "keys";
  auto ring = open_ring(dir);
  const keys::Key key = make_key();
  const mode_t old_umask = ::umask(022);
  const auto added = ring.add(key, keyring::Rotation::no, k_now, k_retire_after);
  ::umask(old_umask);
  REQUIRE(added);
  CHECK(mode_of(dir) == 0700);
  CHECK(mode_of(dir / (key.kid() + ".pem")) == 0600);
  CHECK(mode_of(dir / "index.json") == 0600);
}

TEST_CASE("keyring: the index records every field") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key first = make_key();
  REQUIRE(ring.add(first, keyring::Rotation::no, k_now, k_retire_after));
  REQUIRE(ring.add(make_key(), keyring::Rotation::yes, k_now + 1, k_retire_after));
  const auto index = read_index(dir);
  REQUIRE(index.is_array());
  REQUIRE(index.size() == 2);
  CHECK(index[0]["kid"] == first.kid());
  CHECK(index[0]["alg"] == "ES256");
  CHECK(index[0]["state"] == "published");
  CHECK(index[0]["bits"] == first.bits());
  CHECK(index[0]["created_at"] == k_now);
  CHECK(index[0]["published_at"] == k_now + 1);
  CHECK(index[0]["retire_at"] == k_now + 1 + k_retire_after);
  CHECK(index[0]["file"] == first.kid() + ".pem");
  CHECK(index[1]["published_at"].is_null());
}

TEST_CASE("keyring: a group-readable key file is refused with the chmod fix") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key key = make_key();
  REQUIRE(ring.add(key, keyring::Rotation::no, k_now, k_retire_after));
  const auto key_path = dir / (key.kid() + ".pem");
  ::chmod(key_path.c_str(), 0644);
  const auto refused = keyring::Keyring::open(dir, k_now);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::io);
  CHECK(contains(refused.error().message, "chmod 600 " + key_path.string()));
}

TEST_CASE("keyring: HS256 keys are stored as JWK, verify, and are never public") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key secret = make_key(keys::Alg::HS256);
  const auto added = ring.add(secret, keyring::Rotation::no, k_now, k_retire_after);
  REQUIRE(added);
  CHECK(added->file == secret.kid() + ".jwk");
  CHECK(mode_of(dir / added->file) == 0600);
  CHECK(ring.public_keys().empty());

  const auto reopened = open_ring(dir);
  CHECK(reopened.public_keys().empty());
  const keys::Key* signer = reopened.signer().value();
  CHECK(signer->alg() == keys::Alg::HS256);
  CHECK(signer->secret() == secret.secret());
  CHECK(reopened.verification_keys().find(secret.kid()) != nullptr);
}

TEST_CASE("keyring: an asymmetric key rotated in after HS256 is the only public key") {
  ScratchDir scratch;
  auto ring = open_ring(scratch.path() / "keys");
  REQUIRE(ring.add(make_key(keys::Alg::HS256), keyring::Rotation::no, k_now, k_retire_after));
  const keys::Key ec = make_key(keys::Alg::ES256);
  REQUIRE(ring.add(ec, keyring::Rotation::yes, k_now, k_retire_after));
  CHECK(ring.verification_keys().size() == 2);
  REQUIRE(ring.public_keys().size() == 1);
  CHECK(ring.public_keys()[0]->kid() == ec.kid());
}

TEST_CASE("keyring: RS256 keys round-trip as PKCS#8 PEM") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key rsa = make_key(keys::Alg::RS256);
  REQUIRE(ring.add(rsa, keyring::Rotation::no, k_now, k_retire_after));
  CHECK(contains(fs::read_private(dir / (rsa.kid() + ".pem")).value(), "-----BEGIN PRIVATE KEY-----"));
  const auto reopened = open_ring(dir);
  CHECK(reopened.signer().value()->kid() == rsa.kid());
  CHECK(reopened.records()[0].bits == 2048);
}

TEST_CASE("keyring: a key file that does not match its index entry is refused") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key key = make_key();
  REQUIRE(ring.add(key, keyring::Rotation::no, k_now, k_retire_after));
  write_file(dir / (key.kid() + ".pem"), make_key().private_pem().value());
  const auto refused = keyring::Keyring::open(dir, k_now);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::io);
  CHECK(contains(refused.error().message, "does not match its index entry"));
}

TEST_CASE("keyring: a key file that does not parse fails with io (a local failure, not a token verdict)") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key key = make_key();
  REQUIRE(ring.add(key, keyring::Rotation::no, k_now, k_retire_after));
  write_file(dir / (key.kid() + ".pem"), "not a key\n");
  const auto refused = keyring::Keyring::open(dir, k_now);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::io);
  CHECK(contains(refused.error().message, key.kid() + ".pem"));
}

TEST_CASE("keyring: a missing key file fails with io") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key key = make_key();
  REQUIRE(ring.add(key, keyring::Rotation::no, k_now, k_retire_after));
  stdfs::remove(dir / (key.kid() + ".pem"));
  const auto refused = keyring::Keyring::open(dir, k_now);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::io);
}

TEST_CASE("keyring: a damaged index fails with io") {
  ScratchDir scratch;
  const auto dir = scratch.path() / "keys";
  auto ring = open_ring(dir);
  const keys::Key key = make_key();
  REQUIRE(ring.add(key, keyring::Rotation::no, k_now, k_retire_after));
  const auto good = read_index(dir);

  const auto expect_damaged = [&](const std::string& text, const std::string& part) {
    CAPTURE(text);
    write_file(dir / "index.json", text);
    const auto refused = keyring::Keyring::open(dir, k_now);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::io);
    CHECK(contains(refused.error().message, "damaged"));
    CHECK(contains(refused.error().message, part));
  };
  expect_damaged("{not json", "index.json");
  expect_damaged("{}", "not a JSON array");
  auto no_kid = good;
  no_kid[0].erase("kid");
  expect_damaged(no_kid.dump(), "\"kid\"");
  auto bad_state = good;
  bad_state[0]["state"] = "dormant";
  expect_damaged(bad_state.dump(), "state");
  auto escape = good;
  escape[0]["file"] = "../../outside.pem";
  expect_damaged(escape.dump(), "should be");
  auto twice = good;
  twice.push_back(good[0]);
  expect_damaged(twice.dump(), "appears twice");
}

TEST_CASE("keyring: key_state_name names every state") {
  CHECK(key_state_name(keyring::KeyState::active) == "active");
  CHECK(key_state_name(keyring::KeyState::published) == "published");
  CHECK(key_state_name(keyring::KeyState::retired) == "retired");
}
