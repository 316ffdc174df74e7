// SPDX-License-Identifier: Apache-2.0
// What only the PostgreSQL backend has: store locations and masked URIs,
// migrations under an advisory lock, LISTEN/NOTIFY, rotation and leases
// raced across Store objects (as across replicas), lost connections. The
// semantics shared with SQLite are tested on both in test_store*.cpp.
#include "claudegate/store/open.hpp"
#include "claudegate/store/postgres.hpp"
#include "claudegate/store/store.hpp"

#include "store_support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace claudegate;
using claudegate::test::ScratchDatabase;

namespace {

constexpr UnixSeconds k_pg_now = 1'795'428'000; // 2026-11-23T10:00:00Z

std::unique_ptr<store::Store> open_pg(const std::string& uri) {
  auto opened = store::open_postgres(uri);
  REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message));
  return std::move(*opened);
}

store::StoreLocation location_of(const std::string& text) {
  auto parsed = store::parse_store_location(text);
  REQUIRE_MESSAGE(parsed, (parsed ? "" : parsed.error().message));
  return *parsed;
}

// Run `work(i)` on `count` threads at once.
template <typename Work> void on_threads(int count, Work work) {
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&work, i] { work(i); });
  }
  for (auto& thread : threads) {
    thread.join();
  }
}

// Cut every connection to `database` but the admin's own, as a server restart would.
void terminate_connections(const ScratchDatabase& database) {
  REQUIRE(test::pg_exec(database.admin_uri(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                              "datname = '"
                                                  + database.name() + "' AND pid <> pg_backend_pid()"));
}

} // namespace

// ---- locations -------------------------------------------------------------------------------

TEST_CASE("store location: a path or sqlite:PATH is SQLite; an empty one is refused") {
  auto plain = location_of("/var/lib/claudegate/claudegate.db");
  CHECK(plain.backend == store::StoreLocation::Backend::sqlite);
  CHECK(plain.path == "/var/lib/claudegate/claudegate.db");
  CHECK(plain.display() == "/var/lib/claudegate/claudegate.db");
  auto prefixed = location_of("sqlite:relative/store.db");
  CHECK(prefixed.backend == store::StoreLocation::Backend::sqlite);
  CHECK(prefixed.path == "relative/store.db");
  for (const char* bad : {"", "sqlite:"}) {
    auto refused = store::parse_store_location(bad);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::config);
  }
}

TEST_CASE("store location: postgresql:// and postgres:// URIs, shown with any password masked") {
  auto uri = location_of("postgresql://gate:s3cret@db.example:5433/claudegate?sslmode=require");
  CHECK(uri.backend == store::StoreLocation::Backend::postgresql);
  CHECK(uri.uri == "postgresql://gate:s3cret@db.example:5433/claudegate?sslmode=require");
  CHECK(uri.display() == "postgresql://gate:***@db.example:5433/claudegate?sslmode=require");
  CHECK(location_of("postgres://gate@db/cg").display() == "postgres://gate@db/cg");
  CHECK(location_of("postgresql://db/cg?user=gate&password=hunter2&sslmode=disable").display()
        == "postgresql://db/cg?user=gate&password=***&sslmode=disable");
  CHECK(location_of("postgresql:///cg?password=x").display() == "postgresql:///cg?password=***");
  // A password holding '@' and '/' is masked whole, never in part.
  const auto odd = location_of("postgresql://u:p%40ss@h/db").display();
  CHECK(odd == "postgresql://u:***@h/db");
}

TEST_CASE("store location: a URI libpq cannot parse is a config error that never shows its password") {
  auto refused = store::parse_store_location("postgresql://gate:topsecret@db/cg?no_such_option=1");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::config);
  CHECK(refused.error().message.find("topsecret") == std::string::npos);
  CHECK(refused.error().message.find("postgresql://gate:***@db/cg") != std::string::npos);
}

// ---- a real server ------------------------------------------------------------------------------

TEST_CASE("postgres: a wrong password or an unreachable server is storage, naming the masked URI") {
  if (!test::postgres_enabled()) {
    return;
  }
  ScratchDatabase database;
  std::string wrong = database.uri();
  const auto colon = wrong.find(':', wrong.find("://") + 3);
  const auto at = wrong.find('@');
  wrong.replace(colon + 1, at - colon - 1, "not-the-password-42");
  auto refused = store::open_postgres(wrong);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::storage);
  CHECK(refused.error().message.find("not-the-password-42") == std::string::npos);
  CHECK(refused.error().message.find(":***@") != std::string::npos);
  CHECK(refused.error().message.find("password authentication failed") != std::string::npos);

  auto unreachable = store::open_postgres("postgresql://gate:hidden-pw@127.0.0.1:1/cg?connect_timeout=2");
  REQUIRE_FALSE(unreachable);
  CHECK(unreachable.error().code == Errc::storage);
  CHECK(unreachable.error().message.find("hidden-pw") == std::string::npos);
  CHECK(unreachable.error().message.find("postgresql://gate:***@127.0.0.1:1/cg") != std::string::npos);
}

TEST_CASE("postgres: stores opening a new database at once all succeed and migrate it once") {
  if (!test::postgres_enabled()) {
    return;
  }
  ScratchDatabase database;
  std::atomic<int> opened{0};
  std::vector<std::string> errors(6);
  on_threads(6, [&](int i) {
    auto store = store::open_postgres(database.uri());
    if (store) {
      ++opened;
      (void)(*store)->revoke_jti("j" + std::to_string(i), std::nullopt, "s", "r", k_pg_now);
    } else {
      errors[static_cast<std::size_t>(i)] = store.error().message;
    }
  });
  CHECK_MESSAGE(opened == 6, errors[0]);
  ScratchDatabase* db = &database;
  auto one = [db](const std::string& sql) {
    auto result = test::pg_exec(db->uri(), sql);
    REQUIRE(result);
    return std::string(PQgetvalue(result.get(), 0, 0));
  };
  CHECK(one("SELECT COUNT(*) FROM claudegate_schema") == "1");
  CHECK(one("SELECT COUNT(*) FROM revocation_epoch") == "1");
  CHECK(one("SELECT epoch FROM revocation_epoch") == "6");
}

TEST_CASE("postgres: a database from a newer claudegate is refused and left unchanged") {
  if (!test::postgres_enabled()) {
    return;
  }
  ScratchDatabase database;
  open_pg(database.uri());
  REQUIRE(test::pg_exec(database.uri(), "UPDATE claudegate_schema SET version = 99"));
  auto refused = store::open_postgres(database.uri());
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::storage);
  CHECK(refused.error().message.find("newer claudegate (schema version 99") != std::string::npos);
  CHECK(refused.error().message.find(":***@") != std::string::npos);
  auto version = test::pg_exec(database.uri(), "SELECT version FROM claudegate_schema");
  REQUIRE(version);
  CHECK(std::string(PQgetvalue(version.get(), 0, 0)) == "99");
}

TEST_CASE("postgres: a revocation by one store wakes another's wait_for_revocation within 100 ms") {
  if (!test::postgres_enabled()) {
    return;
  }
  ScratchDatabase database;
  auto writer = open_pg(database.uri());
  auto watcher = open_pg(database.uri());
  // The first wait starts listening; nothing was revoked yet.
  CHECK(watcher->wait_for_revocation(std::chrono::milliseconds(1)).value() == false);
  const auto epoch = watcher->revocation_epoch().value();

  std::atomic<bool> woken{false};
  std::chrono::steady_clock::time_point woke_at;
  std::thread waiting([&] {
    auto pushed = watcher->wait_for_revocation(std::chrono::seconds(10));
    woke_at = std::chrono::steady_clock::now();
    woken = pushed && *pushed;
  });
  const auto revoked_at = std::chrono::steady_clock::now();
  REQUIRE(writer->revoke_subject("alice", k_pg_now, "left", k_pg_now));
  waiting.join();
  CHECK(woken);
  const auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(woke_at - revoked_at);
  CAPTURE(latency.count());
  CHECK(latency < std::chrono::milliseconds(100));
  CHECK(watcher->revocation_epoch().value() > epoch);
  // Every write that moves the epoch notifies: an API key revocation too.
  store::ApiKeyRecord key;
  key.id = "k1";
  key.subject = "bot";
  key.secret_hash = "h";
  key.created_at = k_pg_now;
  key.expires_at = k_pg_now + 3600;
  REQUIRE(writer->create_api_key(key));
  REQUIRE(writer->revoke_api_key("k1", "leaked", k_pg_now));
  CHECK(watcher->wait_for_revocation(std::chrono::seconds(5)).value());
}

TEST_CASE("postgres: two stores rotating one refresh token: exactly one wins, the other is reuse") {
  if (!test::postgres_enabled()) {
    return;
  }
  ScratchDatabase database;
  auto a = open_pg(database.uri());
  auto b = open_pg(database.uri());
  const store::MintFn mint = [](const store::RotatedFamily&) -> Result<void> { return {}; };
  for (int round = 0; round < 10; ++round) {
    const std::string id = "F" + std::to_string(round);
    REQUIRE(a->create_family({id, "alice", json::Json{{"sub", "alice"}}, k_pg_now, k_pg_now + 86'400,
                              id + "h0", k_pg_now + 3600}));
    std::vector<Result<store::RotatedFamily>> results(2, fail(Errc::internal, "not run"));
    on_threads(2, [&](int i) {
      auto& store = i == 0 ? *a : *b;
      results[static_cast<std::size_t>(i)] =
          store.rotate({id + "h0", id + "h1-" + std::to_string(i), k_pg_now + 1, 3600}, mint);
    });
    const int won = (results[0] ? 1 : 0) + (results[1] ? 1 : 0);
    CHECK(won == 1);
    for (const auto& result : results) {
      if (!result) {
        CHECK(result.error().code == Errc::refresh_reuse);
      }
    }
    // Reuse revoked the family for everyone.
    CHECK(b->find_revocation({"any", "alice", k_pg_now, id}).value());
  }
}

TEST_CASE("postgres: leases taken through two stores at once never overshoot the limit together") {
  if (!test::postgres_enabled()) {
    return;
  }
  ScratchDatabase database;
  auto a = open_pg(database.uri());
  auto b = open_pg(database.uri());
  constexpr std::int64_t k_limit = 5000;
  std::atomic<std::int64_t> leased{0};
  std::atomic<int> failed{0};
  on_threads(8, [&](int i) {
    auto& store = i % 2 == 0 ? *a : *b;
    const std::string owner = "host|boot|" + std::to_string(i) + "|1";
    for (;;) {
      store::LeaseRequest request{test::exact_reservation("sam", k_pg_now, 40, k_limit, owner), 0, 0,
                                  k_pg_now + store::k_lease_ttl};
      auto grant = store.take_lease(request, k_pg_now);
      if (!grant) {
        ++failed;
        return;
      }
      if (!grant->granted()) {
        return;
      }
      leased += grant->amounts.added;
    }
  });
  CHECK(failed == 0);
  CHECK(leased <= k_limit);
  CHECK(leased >= k_limit - 40);
  CHECK(a->quota_status("sam", k_pg_now, k_limit).value().reserved == leased);
}

TEST_CASE("postgres: a lost connection fails the next call with storage; the call after reconnects") {
  if (!test::postgres_enabled()) {
    return;
  }
  ScratchDatabase database;
  auto s = open_pg(database.uri());
  REQUIRE(s->revoke_jti("before", std::nullopt, "u", "r", k_pg_now));
  REQUIRE_FALSE(s->wait_for_revocation(std::chrono::milliseconds(1)).value());
  terminate_connections(database);

  auto lost = s->find_revocation({"before", "u", k_pg_now, std::nullopt});
  REQUIRE_FALSE(lost);
  CHECK(lost.error().code == Errc::storage);
  CHECK(lost.error().message.find("check a revocation") != std::string::npos);
  CHECK(lost.error().message.find(":***@") != std::string::npos);
  auto back = s->find_revocation({"before", "u", k_pg_now, std::nullopt});
  REQUIRE_MESSAGE(back, (back ? "" : back.error().message));
  CHECK(back->has_value());
  // The listener: one failed wait, then it listens again.
  auto dropped = s->wait_for_revocation(std::chrono::milliseconds(50));
  CHECK_FALSE(dropped);
  CHECK(s->wait_for_revocation(std::chrono::milliseconds(1)));
  REQUIRE(s->revoke_jti("after", std::nullopt, "u", "r", k_pg_now));
  CHECK(s->wait_for_revocation(std::chrono::seconds(5)).value());
}
