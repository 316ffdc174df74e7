// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/duration.hpp"
#include "claudegate/store/sqlite.hpp"
#include "claudegate/store/store.hpp"

#include "scratch_dir.hpp"
#include "store_support.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <sqlite3.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace claudegate;
using claudegate::test::mode_of;
using claudegate::test::ScratchDir;
namespace stdfs = std::filesystem;

namespace {

constexpr UnixSeconds k_now = 1'750'000'000; // 2025-06-15T15:06:40Z
constexpr UnixSeconds k_day = 86'400;
const UnixSeconds k_today = duration::utc_day_start(k_now);

std::unique_ptr<store::Store> open_store(const stdfs::path& path) {
  auto opened = store::open_sqlite(path);
  REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message));
  return std::move(*opened);
}

// The first column of the first row of `sql` on `path`, read with a separate connection.
std::int64_t sql_int(const stdfs::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
  const int rc = sqlite3_step(statement);
  const std::int64_t value = rc == SQLITE_ROW ? sqlite3_column_int64(statement, 0) : -1;
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return value;
}

std::string sql_text(const stdfs::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
  std::string value;
  if (sqlite3_step(statement) == SQLITE_ROW) {
    value = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return value;
}

std::string file_bytes(const stdfs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

store::NewFamily family(const std::string& id, const std::string& first_hash, UnixSeconds expires_at,
                        UnixSeconds token_expires_at) {
  return {id,         "alice",         json::Json{{"sub", "alice"}, {"plan", "pro"}}, k_now, expires_at,
          first_hash, token_expires_at};
}

store::MintFn mint_ok() {
  return [](const store::RotatedFamily&) -> Result<void> { return {}; };
}

Result<store::RotatedFamily> rotate(store::Store& s, const std::string& from, const std::string& to,
                                    UnixSeconds now, std::int64_t ttl = 7 * k_day) {
  return s.rotate({from, to, now, ttl}, mint_ok());
}

store::UsageRecord record(UnixSeconds at, const std::string& sub, const std::string& model,
                          std::int64_t input, std::int64_t output) {
  store::UsageRecord r;
  r.at = at;
  r.subject = sub;
  r.jti = "jti-" + std::to_string(at);
  r.model = model;
  r.status = 200;
  r.input_tokens = input;
  r.output_tokens = output;
  r.cache_read_tokens = input / 10;
  r.cache_write_tokens = output / 10;
  r.latency_ms = 42;
  r.request_id = "req_" + std::to_string(at);
  return r;
}

store::TokenIdentity identity(const std::string& jti, const std::string& sub, UnixSeconds iat,
                              std::optional<std::string> fid = std::nullopt) {
  return {jti, sub, iat, std::move(fid)};
}

} // namespace

// ---- opening and migrations ----------------------------------------------------

TEST_CASE("store: a new store is migrated to the current schema with mode 0600") {
  ScratchDir scratch;
  const auto path = scratch.path() / "claudegate.db";
  const mode_t old_umask = ::umask(0);
  auto s = store::open_sqlite(path);
  ::umask(old_umask);
  REQUIRE(s);
  CHECK(sql_int(path, "PRAGMA user_version") == store::schema_version());
  CHECK(sql_text(path, "PRAGMA journal_mode") == "wal");
  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(stdfs::path(path.string() + "-wal")) == 0600);
  CHECK(sql_int(path, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'refresh_tokens_one_active'") == 1);
}

TEST_CASE("store: reopening keeps the data and the schema") {
  ScratchDir scratch;
  const auto path = scratch.path() / "claudegate.db";
  open_store(path)->create_family(family("F", "h0", k_now + 30 * k_day, k_now + 7 * k_day)).value();
  auto again = open_store(path);
  auto reopened = open_store(path);
  CHECK(sql_int(path, "PRAGMA user_version") == store::schema_version());
  CHECK(reopened->family_of("h0").value() == std::optional<std::string>("F"));
}

TEST_CASE("store: a store from a newer claudegate is refused and left unchanged") {
  ScratchDir scratch;
  const auto path = scratch.path() / "claudegate.db";
  open_store(path).reset();
  const auto newer = std::to_string(store::schema_version() + 1);
  sql_int(path, "PRAGMA user_version = " + newer);
  const std::string before = file_bytes(path);
  const auto mtime = stdfs::last_write_time(path);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));

  auto opened = store::open_sqlite(path);
  REQUIRE_FALSE(opened);
  CHECK(opened.error().code == Errc::storage);
  CHECK(opened.error().message.find(path.string()) != std::string::npos);
  CHECK(opened.error().message.find("written by a newer claudegate") != std::string::npos);
  CHECK(opened.error().message.find("upgrade claudegate") != std::string::npos);
  CHECK(file_bytes(path) == before);
  CHECK(stdfs::last_write_time(path) == mtime);
  CHECK(sql_int(path, "PRAGMA user_version") == store::schema_version() + 1);
}

TEST_CASE("store: a file that is not a database is a storage error naming the path") {
  ScratchDir scratch;
  const auto path = scratch.path() / "claudegate.db";
  std::ofstream(path, std::ios::binary) << std::string(8192, '\x5a');
  auto opened = store::open_sqlite(path);
  REQUIRE_FALSE(opened);
  CHECK(opened.error().code == Errc::storage);
  CHECK(opened.error().message.find(path.string()) != std::string::npos);
  CHECK(opened.error().message.find("restore a backup") != std::string::npos);
}

TEST_CASE("store: a damaged schema page is a storage error, not a crash") {
  ScratchDir scratch;
  const auto path = scratch.path() / "claudegate.db";
  open_store(path).reset();
  std::string bytes = file_bytes(path);
  REQUIRE(bytes.size() > 4096);
  for (std::size_t i = 100; i < 4096; ++i) {
    bytes[i] = static_cast<char>(0xA5);
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  auto opened = store::open_sqlite(path);
  REQUIRE_FALSE(opened);
  CHECK(opened.error().code == Errc::storage);
}

TEST_CASE("store: a missing folder is an io error") {
  ScratchDir scratch;
  auto opened = store::open_sqlite(scratch.path() / "missing" / "claudegate.db");
  REQUIRE_FALSE(opened);
  CHECK(opened.error().code == Errc::io);
}

// ---- refresh families --------------------------------------------------------------

TEST_CASE("store: rotation walks a chain R0 -> R1 -> R2 and re-issues the grant") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->create_family(family("F", "h0", k_now + 30 * k_day, k_now + 7 * k_day)));
    auto r1 = rotate(*s, "h0", "h1", k_now + 10);
    REQUIRE(r1);
    CHECK(r1->family_id == "F");
    CHECK(r1->subject == "alice");
    CHECK(r1->generation == 1);
    CHECK(r1->grant.at("plan") == "pro");
    CHECK(r1->token_expires_at == k_now + 10 + 7 * k_day);
    auto r2 = rotate(*s, "h1", "h2", k_now + 20);
    REQUIRE(r2);
    CHECK(r2->generation == 2);
    CHECK(s->family_of("h2").value() == std::optional<std::string>("F"));
    CHECK(s->family_of("nope").value() == std::nullopt);
  }
}

TEST_CASE("store: reuse of a used token revokes the family, audits, and kills its successor") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->create_family(family("F", "h0", k_now + 30 * k_day, k_now + 7 * k_day)));
    REQUIRE(rotate(*s, "h0", "h1", k_now + 1));
    REQUIRE(rotate(*s, "h1", "h2", k_now + 2));

    auto reused = rotate(*s, "h0", "hx", k_now + 3);
    REQUIRE_FALSE(reused);
    CHECK(reused.error().code == Errc::refresh_reuse);
    auto revocation = s->find_revocation(identity("any", "alice", k_now, "F")).value();
    REQUIRE(revocation);
    CHECK(revocation->kind == store::RevocationKind::family);
    CHECK(revocation->reason == "refresh token reuse");
    CHECK(scratch.sql_int(
              "SELECT COUNT(*) FROM audit_events WHERE kind = 'refresh_reuse' AND subject = 'alice'")
          == 1);
    CHECK(scratch.sql_int("SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = 'hx'") == 0);

    auto after = rotate(*s, "h2", "h3", k_now + 4);
    REQUIRE_FALSE(after);
    CHECK(after.error().code == Errc::revoked);
  }
}

TEST_CASE("store: an unknown token is claim_mismatch") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    auto unknown = rotate(*s, "nope", "h1", k_now);
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().code == Errc::claim_mismatch);
    CHECK(unknown.error().message == "unknown refresh token");
  }
}

TEST_CASE("store: an expired token is expired, not reuse, and the family is untouched") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->create_family(family("F", "h0", k_now + 30 * k_day, k_now + 100)));
    auto late = rotate(*s, "h0", "h1", k_now + 100);
    REQUIRE_FALSE(late);
    CHECK(late.error().code == Errc::expired);
    CHECK_FALSE(s->find_revocation(identity("j", "alice", k_now, "F")).value());
    CHECK(rotate(*s, "h0", "h1", k_now + 99)); // still the active token
  }
}

TEST_CASE("store: the family's absolute expiry caps its successors and ends it") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->create_family(family("F", "h0", k_now + 500, k_now + 400)));
    auto r1 = rotate(*s, "h0", "h1", k_now + 300, 1000);
    REQUIRE(r1);
    CHECK(r1->token_expires_at == k_now + 500);
    auto r2 = rotate(*s, "h1", "h2", k_now + 500, 1000);
    REQUIRE_FALSE(r2);
    CHECK(r2.error().code == Errc::expired);
  }
}

TEST_CASE("store: a failing mint rolls the rotation back") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->create_family(family("F", "h0", k_now + 30 * k_day, k_now + 7 * k_day)));
    const store::MintFn broken = [](const store::RotatedFamily&) -> Result<void> {
      return fail(Errc::internal, "signing failed");
    };
    auto failed = s->rotate({"h0", "h1", k_now, 3600}, broken);
    REQUIRE_FALSE(failed);
    CHECK(failed.error().code == Errc::internal);
    CHECK(s->family_of("h1").value() == std::nullopt);
    auto retried = rotate(*s, "h0", "h1", k_now + 1);
    REQUIRE(retried);
    CHECK(retried->generation == 1);
  }
}

TEST_CASE("store: the schema allows one active token per family") {
  FOR_EACH_STORE(scratch) {
    scratch.store->create_family(family("F", "h0", k_now + 30 * k_day, k_now + 7 * k_day)).value();
    CHECK_FALSE(
        scratch.try_raw("INSERT INTO refresh_tokens (token_hash, family_id, generation, state, issued_at, "
                        "expires_at) VALUES ('h9', 'F', 9, 'active', 0, 0)"));
  }
}

// ---- revocation ------------------------------------------------------------------------

TEST_CASE("store: jti, subject and family revocations are found and idempotent") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->create_family(family("F", "h0", k_now + 30 * k_day, k_now + 7 * k_day)));
    for (int twice = 0; twice < 2; ++twice) {
      REQUIRE(s->revoke_jti("J1", k_now + 900, "bob", "lost laptop", k_now));
      REQUIRE(s->revoke_subject("carol", k_now, "left", k_now));
      REQUIRE(s->revoke_family("F", "operator", k_now));
    }
    auto jti = s->find_revocation(identity("J1", "bob", k_now - 5)).value();
    REQUIRE(jti);
    CHECK(jti->kind == store::RevocationKind::jti);
    CHECK(jti->reason == "lost laptop");
    CHECK(jti->expires_at == std::optional<UnixSeconds>(k_now + 900));
    CHECK(s->find_revocation(identity("J2", "carol", k_now)).value()->kind == store::RevocationKind::subject);
    CHECK_FALSE(s->find_revocation(identity("J3", "carol", k_now + 1)).value());
    CHECK(s->find_revocation(identity("J4", "alice", k_now, "F")).value()->kind
          == store::RevocationKind::family);
    CHECK_FALSE(s->find_revocation(identity("J5", "alice", k_now, "G")).value());
    CHECK(s->list_revocations().value().size() == 3);
    CHECK(rotate(*s, "h0", "h1", k_now + 1).error().code == Errc::revoked);
  }
}

TEST_CASE("store: a subject keeps its latest cut-off") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->revoke_subject("carol", k_now, "first", k_now));
    REQUIRE(s->revoke_subject("carol", k_now - 100, "older", k_now + 5));
    CHECK(s->find_revocation(identity("J", "carol", k_now)).value()->reason == "first");
    REQUIRE(s->revoke_subject("carol", k_now + 100, "later", k_now + 100));
    CHECK(s->find_revocation(identity("J", "carol", k_now + 50)).value()->reason == "later");
  }
}

namespace {

// A family of `subject` begun at `created_at`, living 30 days, its first token `first_hash`.
store::NewFamily family_of_at(const std::string& id, const std::string& subject, UnixSeconds created_at,
                              const std::string& first_hash) {
  return {id,
          subject,
          json::Json{{"sub", subject}},
          created_at,
          created_at + 30 * k_day,
          first_hash,
          created_at + 7 * k_day};
}

} // namespace

TEST_CASE("store: a subject cut-off stops the families begun by then and counts them once") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->create_family(family_of_at("F1", "alice", k_now, "a0")));
    REQUIRE(s->create_family(family_of_at("F2", "alice", k_now + 10, "b0")));
    REQUIRE(
        s->create_family({"F3", "alice", json::Json{{"sub", "alice"}}, k_now, k_now + 5, "c0", k_now + 5}));
    REQUIRE(s->create_family(family_of_at("F4", "alice", k_now, "d0")));
    REQUIRE(s->revoke_family("F4", "operator", k_now + 1));
    REQUIRE(s->create_family(family_of_at("G", "bob", k_now, "g0")));
    REQUIRE(rotate(*s, "a0", "a1", k_now + 1));

    // F1 and F2 are live and begun by the cut-off; F3 expired, F4 already revoked.
    CHECK(s->revoke_subject("alice", k_now + 10, "left", k_now + 20).value() == 2);
    auto refused = rotate(*s, "a1", "a2", k_now + 21);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::revoked);
    CHECK(refused.error().message.find("subject alice was revoked at") != std::string::npos);
    CHECK(rotate(*s, "b0", "b1", k_now + 21).error().code == Errc::revoked);
    // Refused, not spent: the same token is refused the same way again.
    CHECK(scratch.sql_text("SELECT state FROM refresh_tokens WHERE token_hash = 'a1'") == "active");
    CHECK(rotate(*s, "a1", "a2", k_now + 22).error().code == Errc::revoked);
    // Other subjects, and families begun after the cut-off, rotate.
    CHECK(rotate(*s, "g0", "g1", k_now + 21));
    REQUIRE(s->create_family(family_of_at("F5", "alice", k_now + 11, "e0")));
    CHECK(rotate(*s, "e0", "e1", k_now + 21));

    // Counted once: the same cut-off again stops nothing new; a later one only F5.
    CHECK(s->revoke_subject("alice", k_now + 10, "again", k_now + 23).value() == 0);
    CHECK(s->revoke_subject("alice", k_now + 30, "later", k_now + 30).value() == 1);
  }
}

TEST_CASE("store: reuse is still detected, punished and audited after a subject cut-off") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->create_family(family("F", "h0", k_now + 30 * k_day, k_now + 7 * k_day)));
    REQUIRE(rotate(*s, "h0", "h1", k_now + 1));
    CHECK(s->revoke_subject("alice", k_now + 2, "left", k_now + 2).value() == 1);
    // The spent h0 presented again is reuse, whatever the cut-off says.
    CHECK(rotate(*s, "h0", "hx", k_now + 3).error().code == Errc::refresh_reuse);
    CHECK(s->find_revocation(identity("any", "bob", k_now + 100, "F")).value()->reason
          == "refresh token reuse");
    CHECK(scratch.sql_int("SELECT COUNT(*) FROM audit_events WHERE kind = 'refresh_reuse'") == 1);
    CHECK(rotate(*s, "h1", "h2", k_now + 4).error().code == Errc::revoked);
  }
}

TEST_CASE("store: revoking an unknown family is claim_mismatch") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    auto revoked = s->revoke_family("nope", "why", k_now);
    REQUIRE_FALSE(revoked);
    CHECK(revoked.error().code == Errc::claim_mismatch);
  }
}

TEST_CASE("store: revocations are listed newest first") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->revoke_jti("old", k_now, "a", "r", k_now - 10));
    REQUIRE(s->revoke_subject("b", k_now, "r", k_now));
    REQUIRE(s->revoke_jti("new", std::nullopt, "a", "r", k_now + 10));
    const auto listed = s->list_revocations().value();
    REQUIRE(listed.size() == 3);
    CHECK(listed[0].key == "new");
    CHECK(listed[0].expires_at == std::nullopt);
    CHECK(listed[1].kind == store::RevocationKind::subject);
    CHECK(listed[2].key == "old");
    CHECK(store::revocation_kind_name(listed[1].kind) == "subject");
  }
}

TEST_CASE("store: prune drops only deny-list rows expired before now - leeway") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->revoke_jti("gone", k_now - 61, "a", "r", k_now - 1000));
    REQUIRE(s->revoke_jti("edge", k_now - 60, "a", "r", k_now - 1000));
    REQUIRE(s->revoke_jti("live", k_now + 10, "a", "r", k_now - 1000));
    REQUIRE(s->revoke_jti("forever", std::nullopt, "a", "r", k_now - 1000));
    REQUIRE(s->revoke_subject("b", k_now - 5000, "r", k_now - 5000));
    CHECK(s->prune(k_now, 60).value() == 1);
    CHECK_FALSE(s->find_revocation(identity("gone", "a", 0)).value());
    CHECK(s->find_revocation(identity("edge", "a", 0)).value());
    CHECK(s->list_revocations().value().size() == 4);
    CHECK(s->prune(k_now, 60).value() == 0);
  }
}

// ---- quota ---------------------------------------------------------------------------------

TEST_CASE("store: reservations are refused past the limit, at the exact boundary") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    using test::exact_reservation;
    auto first = s->reserve(exact_reservation("alice", k_now, 600, 1000)).value();
    REQUIRE(first.granted());
    CHECK(first.amount == 600);
    CHECK(first.status.reserved == 600);
    auto second = s->reserve(exact_reservation("alice", k_now, 400, 1000)).value();
    REQUIRE(second.granted());
    CHECK(second.id != first.id);
    CHECK(second.status.reserved == 1000);
    const auto refused = s->reserve(exact_reservation("alice", k_now, 1, 1000)).value();
    CHECK_FALSE(refused.granted());
    CHECK(refused.status.used == 0);
    CHECK(refused.status.reserved == 1000);
    CHECK(refused.status.limit == std::optional<std::int64_t>(1000));
    CHECK(refused.status.resets_at == k_today + k_day);
    CHECK(s->reserve(exact_reservation("bob", k_now, 1000, 1000)).value().granted());
    CHECK(s->reserve(exact_reservation("alice", k_now, 1'000'000, std::nullopt)).value().granted());
  }
}

TEST_CASE("store: a reservation counts until settled, however long its request runs") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    using test::exact_reservation;
    REQUIRE(s->reserve(exact_reservation("alice", k_now, 1000, 1000)).value().granted());
    // A stream of several hours still holds its reservation (it used to lapse after 15 minutes).
    CHECK_FALSE(s->reserve(exact_reservation("alice", k_now + 4 * 3600, 1, 1000)).value().granted());
    CHECK(s->quota_status("alice", k_now + 4 * 3600, 1000).value().reserved == 1000);
  }
}

TEST_CASE("store: huge numbers neither wrap nor slip past the limit") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    using test::exact_reservation;
    constexpr auto k_max = std::numeric_limits<std::int64_t>::max();
    CHECK_FALSE(s->reserve(exact_reservation("alice", k_now, k_max, 1000)).value().granted());
    REQUIRE(s->reserve(exact_reservation("alice", k_now, 600, 1000)).value().granted());
    CHECK_FALSE(s->reserve(exact_reservation("alice", k_now, k_max, 1000)).value().granted());
    CHECK_FALSE(s->reserve(exact_reservation("alice", k_now, 401, 1000)).value().granted());
    CHECK(s->quota_status("alice", k_now, 1000).value().reserved == 600);
    // A limit of the largest value is as good as unlimited, and still does not wrap.
    CHECK(s->reserve(exact_reservation("bob", k_now, k_max - 1, k_max)).value().granted());
    CHECK_FALSE(s->reserve(exact_reservation("bob", k_now, 2, k_max)).value().granted());
  }
}

TEST_CASE("store: clamped and unbounded reservations take what is left, never less than the minimum") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    auto request = test::exact_reservation("alice", k_now, 700, 1000);
    REQUIRE(s->reserve(request).value().granted());
    request.wanted = 800; // 300 left: clamped to it, as the minimum (200) fits
    request.minimum = 200;
    auto clamped = s->reserve(request).value();
    REQUIRE(clamped.granted());
    CHECK(clamped.amount == 300);
    request.wanted = 10;
    request.minimum = 1;
    CHECK_FALSE(s->reserve(request).value().granted()); // nothing left at all
    auto unbounded = test::exact_reservation("bob", k_now, 50, 1000);
    unbounded.take_remaining = true;
    auto taken = s->reserve(unbounded).value();
    REQUIRE(taken.granted());
    CHECK(taken.amount == 1000); // all that is left, so a second one cannot overshoot with it
    CHECK_FALSE(s->reserve(unbounded).value().granted());
    unbounded.subject = "carol";
    unbounded.ceiling = 400;
    CHECK(s->reserve(unbounded).value().amount == 400);
  }
}

TEST_CASE("store: reservations of a dead owner are released, a live one's kept") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    using test::exact_reservation;
    REQUIRE(s->reserve(exact_reservation("alice", k_now, 600, 1000, "host|boot|1|dead")).value().granted());
    REQUIRE(s->reserve(exact_reservation("alice", k_now, 300, 1000)).value().granted());
    const auto released =
        s->release_orphaned([](std::string_view owner) { return owner == store::reservation_owner(); });
    CHECK(released.value() == 1);
    CHECK(s->quota_status("alice", k_now, 1000).value().reserved == 300);
    CHECK(store::owner_may_be_alive(store::reservation_owner()));
    CHECK_FALSE(store::owner_may_be_alive(""));
    // This host, this boot, a pid whose start time does not match: a later process, not the owner.
    auto owner = store::reservation_owner();
    CHECK_FALSE(store::owner_may_be_alive(owner.substr(0, owner.rfind('|')) + "|1"));
  }
}

TEST_CASE("store: settle moves a reservation into today's usage") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    using test::exact_reservation;
    auto reservation = s->reserve(exact_reservation("alice", k_now, 800, 1000)).value();
    REQUIRE(reservation.granted());
    auto usage = record(k_now + 5, "alice", "claude-haiku", 300, 200); // 300+200+30+20
    usage.quota_limit = 1000;
    REQUIRE(s->settle(reservation.id, usage));
    const auto status = s->quota_status("alice", k_now + 6, 1000).value();
    CHECK(status.used == 550);
    CHECK(status.reserved == 0);
    CHECK(s->reserve(exact_reservation("alice", k_now + 7, 450, 1000)).value().granted());
    CHECK_FALSE(s->reserve(exact_reservation("alice", k_now + 7, 1, 1000)).value().granted());
    CHECK(s->quota_status("alice", k_today + k_day, 1000).value().used == 0);
  }
}

TEST_CASE("store: estimated rows are counted apart in usage") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    auto exact = record(k_now, "alice", "claude-haiku", 10, 20);
    auto estimated = record(k_now + 1, "alice", "claude-haiku", 10, 500);
    estimated.estimated = true;
    REQUIRE(s->settle(0, exact));
    REQUIRE(s->settle(0, estimated));
    store::UsageQuery whole_day;
    whole_day.since = k_today;
    whole_day.until = k_today + k_day;
    store::UsageQuery edge = whole_day;
    edge.since = k_now; // a partial day: read from the ledger, not the rollup
    for (const auto& query : {whole_day, edge}) {
      const auto rows = s->usage(query).value();
      REQUIRE(rows.size() == 1);
      CHECK(rows[0].requests == 2);
      CHECK(rows[0].estimated_requests == 1);
    }
  }
}

// ---- usage ----------------------------------------------------------------------------------

TEST_CASE("store: usage groups by sub, day and model with filters") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->settle(0, record(k_today - k_day + 10, "alice", "haiku", 100, 10)));
    REQUIRE(s->settle(0, record(k_today + 10, "alice", "haiku", 200, 20)));
    REQUIRE(s->settle(0, record(k_today + 20, "alice", "sonnet", 300, 30)));
    REQUIRE(s->settle(0, record(k_today + 30, "bob", "haiku", 400, 40)));

    const auto total = s->usage({}).value();
    REQUIRE(total.size() == 1);
    CHECK(total[0].requests == 4);
    CHECK(total[0].input_tokens == 1000);
    CHECK(total[0].total_tokens() == 1000 + 100 + 100 + 10);

    const auto by_sub_day = s->usage({{}, {}, {}, {}, {store::GroupBy::sub, store::GroupBy::day}}).value();
    REQUIRE(by_sub_day.size() == 3);
    CHECK(by_sub_day[0].subject == "alice");
    CHECK(by_sub_day[0].day == duration::utc_day(k_today - k_day));
    CHECK(by_sub_day[1].day == duration::utc_day(k_today));
    CHECK(by_sub_day[1].input_tokens == 500);
    CHECK(by_sub_day[2].subject == "bob");

    const auto by_model = s->usage({k_today, {}, "alice", {}, {store::GroupBy::model}}).value();
    REQUIRE(by_model.size() == 2);
    CHECK(by_model[0].model == "haiku");
    CHECK(by_model[0].requests == 1);
    CHECK(by_model[1].model == "sonnet");

    const auto filtered = s->usage({k_today + 15, k_today + 30, {}, "sonnet", {}}).value();
    CHECK(filtered.at(0).requests == 1);
    CHECK(s->usage({{}, k_today, {}, {}, {store::GroupBy::sub}}).value().size() == 1);
    CHECK(s->usage({k_today - k_day + 11, {}, {}, {}, {}}).value().at(0).requests == 3);
    CHECK(s->usage({{}, k_today + 21, {}, {}, {}}).value().at(0).requests == 3);
    CHECK(s->usage({{}, {}, "nobody", {}, {store::GroupBy::sub}}).value().empty());
  }
}

namespace {

// The expected rows of a usage query, summed here from the records
// themselves: keyed by the grouping's values in its order, as the store sorts.
using ExpectedRows = std::map<std::vector<std::string>, store::UsageRow>;

ExpectedRows expected_rows(const std::vector<store::UsageRecord>& records, UnixSeconds since,
                           UnixSeconds until, const std::optional<std::string>& subject,
                           const std::vector<store::GroupBy>& grouping) {
  ExpectedRows rows;
  for (const auto& r : records) {
    if (r.at < since || r.at >= until || (subject && r.subject != *subject)) {
      continue;
    }
    std::vector<std::string> key;
    store::UsageRow row;
    for (const auto by : grouping) {
      const std::string value = by == store::GroupBy::sub   ? r.subject
                                : by == store::GroupBy::day ? duration::utc_day(r.at)
                                                            : r.model;
      key.push_back(value);
      (by == store::GroupBy::sub ? row.subject : by == store::GroupBy::day ? row.day : row.model) = value;
    }
    auto& sum = rows.try_emplace(key, row).first->second;
    sum.requests += 1;
    sum.input_tokens += r.input_tokens;
    sum.output_tokens += r.output_tokens;
    sum.cache_read_tokens += r.cache_read_tokens;
    sum.cache_write_tokens += r.cache_write_tokens;
  }
  return rows;
}

// `actual` has exactly the rows of `expected`, in order, field by field.
void check_rows(const std::vector<store::UsageRow>& actual, const ExpectedRows& expected) {
  REQUIRE(actual.size() == expected.size());
  std::size_t i = 0;
  for (const auto& [key, want] : expected) {
    const auto& got = actual[i++];
    CHECK(got.subject == want.subject);
    CHECK(got.day == want.day);
    CHECK(got.model == want.model);
    CHECK(got.requests == want.requests);
    CHECK(got.input_tokens == want.input_tokens);
    CHECK(got.output_tokens == want.output_tokens);
    CHECK(got.cache_read_tokens == want.cache_read_tokens);
    CHECK(got.cache_write_tokens == want.cache_write_tokens);
  }
}

} // namespace

TEST_CASE("store: the daily rollup and the raw ledger agree") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    std::mt19937 random(7);
    const std::vector<std::string> subjects = {"alice", "bob", "carol"};
    const std::vector<std::string> models = {"haiku", "sonnet", "opus"};
    std::vector<store::UsageRecord> records;
    for (int i = 0; i < 300; ++i) {
      // Never on a day's first or last second, so the shifted raw ranges below select the same rows.
      const auto day = static_cast<UnixSeconds>(random() % 6);
      const UnixSeconds at =
          k_today - (5 - day) * k_day + 1 + static_cast<UnixSeconds>(random() % (k_day - 2));
      records.push_back(record(at, subjects[random() % 3], models[random() % 3],
                               static_cast<std::int64_t>(random() % 1000),
                               static_cast<std::int64_t>(random() % 500)));
      REQUIRE(s->settle(0, records.back()));
    }
    using store::GroupBy;
    const std::vector<std::vector<GroupBy>> groupings = {{},
                                                         {GroupBy::sub},
                                                         {GroupBy::day},
                                                         {GroupBy::model},
                                                         {GroupBy::sub, GroupBy::day},
                                                         {GroupBy::day, GroupBy::model, GroupBy::sub}};
    const UnixSeconds since = k_today - 3 * k_day;
    for (const auto& grouping : groupings) {
      for (const auto& subject : std::vector<std::optional<std::string>>{std::nullopt, "bob"}) {
        CAPTURE(grouping.size());
        CAPTURE(subject.value_or("(all)"));
        const auto expected = expected_rows(records, since, k_today, subject, grouping);
        REQUIRE_FALSE(expected.empty());
        // Whole days (the rollup), and the same rows read from the raw ledger
        // by ranges that start or end one second inside those days.
        check_rows(s->usage({since, k_today, subject, {}, grouping}).value(), expected);
        check_rows(s->usage({since, k_today - 1, subject, {}, grouping}).value(), expected);
        check_rows(s->usage({since + 1, k_today, subject, {}, grouping}).value(), expected);
      }
    }
    // Three whole days of three subjects and three models: every group is there.
    CHECK(expected_rows(records, since, k_today, {}, {GroupBy::day, GroupBy::model, GroupBy::sub}).size()
          == 27);
  }
}

TEST_CASE("store: a range inside two partial days is read from the raw ledger alone") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    const std::vector<UnixSeconds> times = {k_today - k_day - 1, k_today - k_day + 5, k_today - 7,
                                            k_today + 3,         k_today + k_day - 2, k_today + k_day};
    for (UnixSeconds at : times) {
      REQUIRE(s->settle(0, record(at, at % 2 == 0 ? "alice" : "bob", "haiku", 100, 1)));
    }
    using store::GroupBy;
    const auto rollup =
        s->usage({k_today - k_day, k_today + k_day, {}, {}, {GroupBy::day, GroupBy::sub}}).value();
    const auto raw =
        s->usage({k_today - k_day + 1, k_today + k_day - 1, {}, {}, {GroupBy::day, GroupBy::sub}}).value();
    REQUIRE(rollup.size() == raw.size());
    for (std::size_t i = 0; i < rollup.size(); ++i) {
      CHECK(rollup[i].day == raw[i].day);
      CHECK(rollup[i].subject == raw[i].subject);
      CHECK(rollup[i].requests == raw[i].requests);
      CHECK(rollup[i].total_tokens() == raw[i].total_tokens());
    }
    CHECK(s->usage({k_today - k_day + 6, k_today + k_day - 2, {}, {}, {}}).value().at(0).requests == 2);
  }
}

TEST_CASE("store: subject_quotas reports today's usage and the latest limit") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    auto yesterday = record(k_today - 100, "alice", "haiku", 1000, 0);
    yesterday.quota_limit = 5000;
    auto today = record(k_today + 100, "alice", "haiku", 100, 0);
    today.quota_limit = 9000;
    auto older = record(k_today + 50, "alice", "haiku", 10, 0);
    older.quota_limit = 1;
    REQUIRE(s->settle(0, yesterday));
    REQUIRE(s->settle(0, today));
    REQUIRE(s->settle(0, older));
    REQUIRE(s->settle(0, record(k_today - 100, "bob", "haiku", 5, 5)));
    const auto quotas = s->subject_quotas(k_now).value();
    REQUIRE(quotas.size() == 2);
    CHECK(quotas[0].subject == "alice");
    CHECK(quotas[0].used_today == 110 + 10 + 1);
    CHECK(quotas[0].limit == std::optional<std::int64_t>(9000));
    CHECK(quotas[1].subject == "bob");
    CHECK(quotas[1].used_today == 0);
    CHECK(quotas[1].limit == std::nullopt);
  }
}

TEST_CASE("store: every revocation write moves the epoch; reads and metering do not") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    std::int64_t epoch = s->revocation_epoch().value();
    const auto moved = [&] {
      const std::int64_t now_epoch = s->revocation_epoch().value();
      const bool changed = now_epoch != epoch;
      epoch = now_epoch;
      return changed;
    };
    REQUIRE(s->create_family(family("F", "h0", k_now + 30 * k_day, k_now + 7 * k_day)));
    REQUIRE(s->create_family(family_of_at("G", "bob", k_now, "g0")));
    store::ApiKeyRecord key;
    key.id = "k1";
    key.subject = "bot";
    key.secret_hash = "h";
    key.created_at = k_now;
    key.expires_at = k_now + k_day;
    REQUIRE(s->create_api_key(key));
    REQUIRE(s->settle(0, record(k_now, "alice", "haiku", 1, 1)));
    REQUIRE(s->find_revocation(identity("J", "alice", k_now)));
    CHECK_FALSE(moved());
    REQUIRE(s->revoke_jti("J", k_now + 60, "alice", "r", k_now));
    CHECK(moved());
    REQUIRE(s->revoke_subject("alice", k_now, "r", k_now));
    CHECK(moved());
    REQUIRE(s->revoke_family("F", "r", k_now));
    CHECK(moved());
    REQUIRE(rotate(*s, "g0", "g1", k_now + 1));
    CHECK_FALSE(moved());
    CHECK(rotate(*s, "g0", "g2", k_now + 2).error().code == Errc::refresh_reuse);
    CHECK(moved());
    store::ApiKeyRecord successor = key;
    successor.id = "k2";
    successor.rotated_from = "k1";
    REQUIRE(s->rotate_api_key(successor, k_now + 100));
    CHECK(moved());
    REQUIRE(s->retire_api_key("k2", k_now + 50));
    CHECK(moved());
    REQUIRE(s->revoke_api_key("k2", "leaked", k_now));
    CHECK(moved());
    REQUIRE(s->touch_api_key("k1", k_now + 5));
    CHECK_FALSE(moved());
  }
}

TEST_CASE("store: audit events are appended") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    REQUIRE(s->audit({k_now, "revoke", "alice", R"({"jti":"J"})"}));
    CHECK(scratch.sql_text("SELECT detail FROM audit_events WHERE kind = 'revoke'") == R"({"jti":"J"})");
  }
}

TEST_CASE("store: utc_day and utc_day_start") {
  CHECK(duration::utc_day(0) == "1970-01-01");
  CHECK(duration::utc_day(k_now) == "2025-06-15");
  CHECK(duration::utc_day(-1) == "1969-12-31");
  CHECK(duration::utc_day_start(k_now) == 1'749'945'600);
  CHECK(duration::utc_day_start(-1) == -k_day);
}

// ---- processes ---------------------------------------------------------------------------------

namespace {

// Exit code of a child that opened `path`, waited for `go`, and rotated h0 once.
[[noreturn]] void rotate_in_child(const stdfs::path& path, int go) {
  auto opened = store::open_sqlite(path);
  if (!opened) {
    ::_exit(10);
  }
  char byte = 0;
  (void)::read(go, &byte, 1);
  auto rotated = (*opened)->rotate({"h0", "h1-" + std::to_string(::getpid()), k_now + 1, 3600}, mint_ok());
  if (rotated) {
    ::_exit(0);
  }
  ::_exit(rotated.error().code == Errc::refresh_reuse ? 6 : rotated.error().code == Errc::revoked ? 5 : 11);
}

} // namespace

TEST_CASE("store: 16 processes rotating one token: exactly one wins, the family ends revoked") {
  ScratchDir scratch;
  const auto path = scratch.path() / "db";
  open_store(path)->create_family(family("F", "h0", k_now + 30 * k_day, k_now + 7 * k_day)).value();
  int go[2];
  REQUIRE(::pipe(go) == 0);
  std::vector<pid_t> children;
  for (int i = 0; i < 16; ++i) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(go[1]);
      rotate_in_child(path, go[0]);
    }
    children.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]); // every child's read returns at once
  int won = 0;
  int lost = 0;
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    CAPTURE(code);
    CHECK((code == 0 || code == 5 || code == 6));
    won += code == 0 ? 1 : 0;
    lost += code == 5 || code == 6 ? 1 : 0;
  }
  CHECK(won == 1);
  CHECK(lost == 15);
  CHECK(sql_text(path, "PRAGMA integrity_check") == "ok");
  CHECK(sql_int(path, "SELECT COUNT(*) FROM refresh_families WHERE revoked_at IS NOT NULL") == 1);
  CHECK(sql_int(path, "SELECT COUNT(*) FROM refresh_tokens WHERE state = 'active'") == 0);
}

TEST_CASE("store: 16 processes opening a new store at once all succeed and migrate it once") {
  ScratchDir scratch;
  const auto path = scratch.path() / "db";
  std::vector<pid_t> children;
  for (int i = 0; i < 16; ++i) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto opened = store::open_sqlite(path);
      ::_exit(opened && (*opened)->revoke_jti("J" + std::to_string(i), {}, "a", "r", k_now) ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(sql_int(path, "PRAGMA user_version") == store::schema_version());
  CHECK(sql_int(path, "SELECT COUNT(*) FROM revoked_jtis") == 16);
  CHECK(sql_text(path, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("store: kill -9 mid-rotation leaves a sound store with every committed rotation") {
  ScratchDir scratch;
  const auto path = scratch.path() / "db";
  open_store(path)->create_family(family("F", "g0", k_now + 30 * k_day, k_now + 7 * k_day)).value();
  int report[2];
  REQUIRE(::pipe(report) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(report[0]);
    auto s = store::open_sqlite(path);
    for (int g = 0; s; ++g) {
      if (!(*s)->rotate({"g" + std::to_string(g), "g" + std::to_string(g + 1), k_now, 3600}, mint_ok())) {
        ::_exit(1);
      }
      const int committed = g + 1;
      (void)::write(report[1], &committed, sizeof committed);
    }
    ::_exit(1);
  }
  ::close(report[1]);
  int committed = 0;
  for (int seen = 0; seen < 50 && ::read(report[0], &seen, sizeof seen) == sizeof seen;) {
    committed = seen;
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  for (int late = 0; ::read(report[0], &late, sizeof late) == sizeof late;) {
    committed = late;
  }
  ::close(report[0]);
  REQUIRE(committed >= 50);
  auto s = open_store(path);
  CHECK(sql_text(path, "PRAGMA integrity_check") == "ok");
  CHECK(sql_int(path, "SELECT MAX(generation) FROM refresh_tokens") >= committed);
  CHECK(s->family_of("g" + std::to_string(committed)).value() == std::optional<std::string>("F"));
}

TEST_CASE("store: a file deleted or replaced under an open store is refused, never written blind") {
  const ScratchDir dir;
  const auto path = dir.path() / "claudegate.db";
  auto s = open_store(path);
  REQUIRE(s->revoke_jti("J1", k_now + 900, "bob", "lost laptop", k_now));
  stdfs::remove(path);
  auto lookup = s->find_revocation(identity("J1", "bob", k_now));
  REQUIRE_FALSE(lookup);
  CHECK(lookup.error().code == Errc::storage);
  CHECK(lookup.error().message.find("deleted or replaced") != std::string::npos);
  CHECK_FALSE(s->revoke_jti("J2", k_now + 900, "bob", "lost laptop", k_now));
  // A new store in its place: the old connection must not read or write the old inode.
  auto replacement = open_store(path);
  REQUIRE(replacement->revoke_jti("J3", k_now + 900, "carol", "gone", k_now));
  CHECK_FALSE(s->find_revocation(identity("J3", "carol", k_now)));
  CHECK(replacement->find_revocation(identity("J3", "carol", k_now)).value());
}
