// SPDX-License-Identifier: Apache-2.0
// Store::prune over deny-lists large enough to take each of its two paths
// (survivors copied aside and the table cleared whole, or rows deleted in
// place), and find_revocation's precedence when several revocations apply.
#include "claudegate/store/sqlite.hpp"
#include "claudegate/store/store.hpp"

#include "scratch_dir.hpp"
#include "store_support.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

using namespace claudegate;
using claudegate::test::ScratchDir;

namespace {

constexpr UnixSeconds k_prune_now = 1'750'000'000;
constexpr std::int64_t k_prune_leeway = 60;
constexpr UnixSeconds k_prune_cutoff = k_prune_now - k_prune_leeway;

std::unique_ptr<store::Store> open_prune_store(const std::filesystem::path& path) {
  auto opened = store::open_sqlite(path);
  REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message));
  return std::move(*opened);
}

// A second connection to the store file, as the sqlite3 shell would be.
class RawDb {
public:
  explicit RawDb(const std::filesystem::path& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &m_db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(m_db, 10'000);
  }
  ~RawDb() { sqlite3_close(m_db); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &message);
    const std::string text = message != nullptr ? message : "";
    sqlite3_free(message);
    REQUIRE_MESSAGE(rc == SQLITE_OK, text);
  }

  // Every row of `sql`, its columns joined by '|', rows by '\n'.
  std::string rows(const std::string& sql) {
    sqlite3_stmt* statement = nullptr;
    REQUIRE(sqlite3_prepare_v2(m_db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
    std::string out;
    while (sqlite3_step(statement) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(statement); ++i) {
        const auto* text = sqlite3_column_text(statement, i);
        out +=
            (i == 0 ? "" : "|") + std::string(text != nullptr ? reinterpret_cast<const char*>(text) : "NULL");
      }
      out += "\n";
    }
    sqlite3_finalize(statement);
    return out;
  }

  std::int64_t number(const std::string& sql) { return std::stoll(rows(sql)); }

private:
  sqlite3* m_db = nullptr;
};

const std::string k_schema_sql =
    "SELECT type, name, tbl_name, rootpage > 0, sql FROM sqlite_schema ORDER BY name";
const std::string k_survivors_sql =
    "SELECT rowid, jti, subject, reason, revoked_at, expires_at FROM revoked_jtis "
    "WHERE expires_at IS NULL OR expires_at >= "
    + std::to_string(k_prune_cutoff) + " ORDER BY rowid";

// `count` deny-list rows "<prefix>N" expiring at `expires_at` (NULL when
// negative), in one transaction, the way `revoke` writes them.
void add_rows(RawDb& db, const std::string& prefix, std::int64_t count, UnixSeconds expires_at) {
  const std::string expiry = expires_at < 0 ? std::string("NULL") : std::to_string(expires_at);
  db.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(count)
          + ") INSERT INTO revoked_jtis (jti, subject, reason, revoked_at, expires_at) SELECT '" + prefix
          + "' || i, 'user-' || (i % 7), 'test', 1000, " + expiry + " FROM n");
}

store::TokenIdentity jti_identity(const std::string& jti) {
  return {jti, "someone-unrevoked", k_prune_now - 100, std::nullopt};
}

// Prune `expired` rows beside `live` ones (plus three without expiry and one
// exactly at the cut-off) and check what must not change.
void check_prune(std::int64_t expired, std::int64_t live) {
  const ScratchDir scratch;
  const auto path = scratch.path() / "claudegate.db";
  auto s = open_prune_store(path);
  RawDb raw(path);
  raw.exec("BEGIN");
  add_rows(raw, "expired-", expired, k_prune_cutoff - 1);
  add_rows(raw, "live-", live, k_prune_now + 3600);
  add_rows(raw, "forever-", 3, -1);
  add_rows(raw, "edge-", 1, k_prune_cutoff);
  raw.exec("COMMIT");
  const std::string schema = raw.rows(k_schema_sql);
  const std::string survivors = raw.rows(k_survivors_sql);
  const std::int64_t epoch = raw.number("SELECT epoch FROM revocation_epoch");

  CHECK(s->prune(k_prune_now, k_prune_leeway).value() == expired);

  CHECK(raw.rows(k_schema_sql) == schema);
  CHECK(raw.rows("SELECT rowid, * FROM revoked_jtis ORDER BY rowid") == survivors);
  CHECK(raw.number("SELECT epoch FROM revocation_epoch") == epoch);
  CHECK(raw.rows("PRAGMA integrity_check") == "ok\n");
  for (const auto& jti :
       std::vector<std::string>{"live-1", "forever-3", "edge-1", "live-" + std::to_string(live)}) {
    const auto found = s->find_revocation(jti_identity(jti)).value();
    REQUIRE_MESSAGE(found, jti);
    CHECK(found->kind == store::RevocationKind::jti);
  }
  CHECK_FALSE(s->find_revocation(jti_identity("expired-1")).value());
  CHECK_FALSE(s->find_revocation(jti_identity("expired-" + std::to_string(expired))).value());
  // The epoch triggers still fire, and a second prune (the same connection) finds nothing left.
  REQUIRE(s->revoke_jti("after", k_prune_now + 60, "u", "r", k_prune_now));
  CHECK(raw.number("SELECT epoch FROM revocation_epoch") == epoch + 1);
  CHECK(s->prune(k_prune_now, k_prune_leeway).value() == 0);
  // The same connection prunes a second large batch (no leftover scratch table in its way).
  add_rows(raw, "expired-again-", expired, k_prune_cutoff - 10);
  CHECK(s->prune(k_prune_now, k_prune_leeway).value() == expired);
  CHECK(raw.number("SELECT COUNT(*) FROM revoked_jtis") == live + 3 + 1 + 1);
}

} // namespace

TEST_CASE("store prune: a mostly expired deny-list keeps its live rows, schema, rowids and epoch") {
  check_prune(5000, 40);
}

TEST_CASE("store prune: a mostly live deny-list gives the same result") {
  check_prune(30, 3000);
}

TEST_CASE("store prune: a prune that fails half-way leaves the deny-list and the epoch unchanged") {
  const ScratchDir scratch;
  const auto path = scratch.path() / "claudegate.db";
  auto s = open_prune_store(path);
  RawDb raw(path);
  add_rows(raw, "expired-", 5000, k_prune_cutoff - 1);
  add_rows(raw, "live-", 10, k_prune_now + 3600);
  // Refuse the last step of a prune by copy (the epoch put back) by hand.
  raw.exec("CREATE TRIGGER refuse_epoch_rewind BEFORE UPDATE ON revocation_epoch WHEN NEW.epoch < OLD.epoch "
           "BEGIN SELECT RAISE(ABORT, 'epoch rewind refused'); END");
  const std::string before = raw.rows("SELECT rowid, * FROM revoked_jtis ORDER BY rowid");
  const std::string epoch = raw.rows("SELECT epoch FROM revocation_epoch");

  const auto failed = s->prune(k_prune_now, k_prune_leeway);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == Errc::storage);
  CHECK(raw.rows("SELECT rowid, * FROM revoked_jtis ORDER BY rowid") == before);
  CHECK(raw.rows("SELECT epoch FROM revocation_epoch") == epoch);
  CHECK(s->find_revocation(jti_identity("expired-1")).value());

  raw.exec("DROP TRIGGER refuse_epoch_rewind");
  CHECK(s->prune(k_prune_now, k_prune_leeway).value() == 5000);
  CHECK(raw.number("SELECT COUNT(*) FROM revoked_jtis") == 10);
}

TEST_CASE(
    "store prune: when several revocations apply, the jti's wins, then the subject's, then the family's") {
  FOR_EACH_STORE(scratch) {
    auto& s = scratch.store;
    const UnixSeconds now = k_prune_now;
    REQUIRE(
        s->create_family({"F", "carol", json::Json{{"sub", "carol"}}, now, now + 86'400, "h0", now + 3600}));
    REQUIRE(s->revoke_family("F", "family reason", now));
    REQUIRE(s->revoke_subject("carol", now, "subject reason", now));
    REQUIRE(s->revoke_jti("J", now + 900, "carol", "jti reason", now));

    const auto all = s->find_revocation({"J", "carol", now - 5, "F"}).value();
    REQUIRE(all);
    CHECK(all->kind == store::RevocationKind::jti);
    CHECK(all->key == "J");
    CHECK(all->reason == "jti reason");
    CHECK(all->expires_at == std::optional<UnixSeconds>(now + 900));
    const auto subject_and_family = s->find_revocation({"K", "carol", now - 5, "F"}).value();
    REQUIRE(subject_and_family);
    CHECK(subject_and_family->kind == store::RevocationKind::subject);
    CHECK(subject_and_family->key == "carol");
    CHECK(subject_and_family->reason == "subject reason");
    CHECK(subject_and_family->revoked_at == now);
    CHECK(subject_and_family->expires_at == std::nullopt);
    // Issued after the cut-off: only the family applies.
    const auto family = s->find_revocation({"K", "carol", now + 5, "F"}).value();
    REQUIRE(family);
    CHECK(family->kind == store::RevocationKind::family);
    CHECK(family->key == "F");
    CHECK(family->reason == "family reason");
    CHECK_FALSE(s->find_revocation({"K", "carol", now + 5, std::nullopt}).value());
    CHECK_FALSE(s->find_revocation({"K", "dave", now - 5, "G"}).value());
  }
}
