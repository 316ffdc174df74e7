// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/store/postgres.hpp"
#include "claudegate/store/sqlite.hpp"
#include "claudegate/store/store.hpp"

#include "scratch_dir.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace claudegate::test {

// A reservation request for exactly `amount` tokens (no clamping) under `limit`.
inline store::ReservationRequest exact_reservation(std::string subject, UnixSeconds now, std::int64_t amount,
                                                   std::optional<std::int64_t> limit,
                                                   std::string owner = store::reservation_owner()) {
  store::ReservationRequest request;
  request.subject = std::move(subject);
  request.now = now;
  request.wanted = amount;
  request.minimum = amount;
  request.limit = limit;
  request.owner = std::move(owner);
  return request;
}

// ---- the backends the store tests run on -------------------------------------------

enum class Backend { sqlite, postgresql };

// The admin URI of the test PostgreSQL server (scripts/pg-cluster.sh prints
// it; scripts/test.sh exports it), or nullopt.
inline std::optional<std::string> postgres_admin_uri() {
  const char* uri = std::getenv("CLAUDEGATE_TEST_POSTGRES");
  return uri != nullptr && *uri != '\0' ? std::optional<std::string>(uri) : std::nullopt;
}

// Whether the PostgreSQL part of a test can run. Without a server it says
// why (a MESSAGE), or fails with CI set: CI must run every backend.
inline bool postgres_enabled() {
  if (postgres_admin_uri()) {
    return true;
  }
  const char* ci = std::getenv("CI");
  const std::string why =
      "PostgreSQL part skipped: CLAUDEGATE_TEST_POSTGRES is unset; start a server with "
      "`d=$(mktemp -d); chmod 711 $d; export CLAUDEGATE_TEST_POSTGRES=$(scripts/pg-cluster.sh "
      "start $d/pg)` (scripts/test.sh does this)";
  if (ci != nullptr && *ci != '\0') {
    FAIL_CHECK(why);
  } else {
    MESSAGE(why);
  }
  return false;
}

struct BackendCase {
  Backend backend;
  std::string name; // for INFO (doctest shows a char* as a pointer)
};

// SQLite always; PostgreSQL when a test server is given (postgres_enabled).
inline std::vector<BackendCase> store_backends() {
  std::vector<BackendCase> backends{{Backend::sqlite, "sqlite"}};
  if (postgres_enabled()) {
    backends.push_back({Backend::postgresql, "postgresql"});
  }
  return backends;
}

// ---- raw PostgreSQL access ------------------------------------------------------------

struct PgResultFree {
  void operator()(PGresult* result) const { PQclear(result); }
};
struct PgConnFree {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultFree>;
using PgConnPtr = std::unique_ptr<PGconn, PgConnFree>;

inline PgConnPtr pg_connect(const std::string& uri) {
  PgConnPtr conn(PQconnectdb(uri.c_str()));
  REQUIRE_MESSAGE(PQstatus(conn.get()) == CONNECTION_OK, PQerrorMessage(conn.get()));
  return conn;
}

// Run `sql` on `uri` (a fresh connection); the result, or nullptr on failure
// (then `error` says why).
inline PgResultPtr pg_exec(const std::string& uri, const std::string& sql, std::string* error = nullptr) {
  auto conn = pg_connect(uri);
  PgResultPtr result(PQexec(conn.get(), sql.c_str()));
  const auto status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    return result;
  }
  if (error != nullptr) {
    *error = PQresultErrorMessage(result.get());
  }
  return nullptr;
}

// `admin_uri` with its database replaced by `database`.
inline std::string with_database(const std::string& admin_uri, const std::string& database) {
  const auto query = admin_uri.find('?');
  const std::string base = admin_uri.substr(0, query);
  const auto slash = base.find('/', base.find("://") + 3);
  const std::string rest = query == std::string::npos ? "" : admin_uri.substr(query);
  return (slash == std::string::npos ? base : base.substr(0, slash)) + "/" + database + rest;
}

// A new empty database on the test server, dropped (with any connection
// left to it) at scope exit.
class ScratchDatabase {
public:
  ScratchDatabase() : m_admin(*postgres_admin_uri()) {
    std::random_device entropy;
    m_name = "cg_" + std::to_string(entropy()) + "_" + std::to_string(entropy());
    std::string error;
    REQUIRE_MESSAGE(pg_exec(m_admin, "CREATE DATABASE " + m_name, &error), error);
    m_uri = with_database(m_admin, m_name);
  }
  ~ScratchDatabase() { (void)pg_exec(m_admin, "DROP DATABASE IF EXISTS " + m_name + " WITH (FORCE)"); }
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;

  const std::string& uri() const { return m_uri; }
  const std::string& admin_uri() const { return m_admin; }
  const std::string& name() const { return m_name; }

private:
  std::string m_admin;
  std::string m_name;
  std::string m_uri;
};

// ---- a fresh store of either backend ----------------------------------------------------

// A new store of `backend` (SQLite: a file in a scratch folder; PostgreSQL:
// a new database), with raw SQL access as an operator's shell would have.
struct ScratchStore {
  explicit ScratchStore(Backend which = Backend::sqlite) : backend(which) {
    if (backend == Backend::postgresql) {
      database.emplace();
    }
    store = open();
  }

  Backend backend;
  ScratchDir dir;
  std::filesystem::path path = dir.path() / "claudegate.db";
  std::optional<ScratchDatabase> database;
  std::unique_ptr<store::Store> store;

  ~ScratchStore() { store.reset(); }
  ScratchStore(const ScratchStore&) = delete;
  ScratchStore& operator=(const ScratchStore&) = delete;

  // Another handle on the same store (as a second process would open it).
  std::unique_ptr<store::Store> open() const {
    auto opened =
        backend == Backend::sqlite ? store::open_sqlite(path) : store::open_postgres(database->uri());
    REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message));
    return std::move(*opened);
  }

  // Run `sql`; false when it fails.
  bool try_raw(const std::string& sql) const {
    if (backend == Backend::postgresql) {
      return pg_exec(database->uri(), sql) != nullptr;
    }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return rc == SQLITE_OK;
  }

  // Run `sql` through the database's own library, as an operator's shell would.
  void raw(const std::string& sql) const { REQUIRE(try_raw(sql)); }

  // The first column of the first row of `sql` as text ("" when no row).
  std::optional<std::string> first_value(const std::string& sql) const {
    if (backend == Backend::postgresql) {
      auto result = pg_exec(database->uri(), sql);
      REQUIRE(result);
      if (PQntuples(result.get()) == 0) {
        return std::nullopt;
      }
      return std::string(PQgetvalue(result.get(), 0, 0));
    }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* statement = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
    std::optional<std::string> value;
    if (sqlite3_step(statement) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(statement, 0);
      value = text != nullptr ? reinterpret_cast<const char*>(text) : "";
    }
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return value;
  }

  // The first column of the first row of `sql` as a number: -1 when there
  // is no row, 0 for NULL.
  std::int64_t sql_int(const std::string& sql) const {
    const auto value = first_value(sql);
    return !value ? -1 : value->empty() ? 0 : std::stoll(*value);
  }
  std::string sql_text(const std::string& sql) const { return first_value(sql).value_or(""); }
};

// Run the statement that follows once per backend with `scratch` a fresh
// store of it: FOR_EACH_STORE(scratch) { … }.
#define FOR_EACH_STORE(scratch)                                                                              \
  for (const auto& backend_of_##scratch : ::claudegate::test::store_backends())                              \
    if (::claudegate::test::ScratchStore scratch(backend_of_##scratch.backend); false) {                     \
    } else if (INFO("backend: ", backend_of_##scratch.name); false) {                                        \
    } else

} // namespace claudegate::test
