// SPDX-License-Identifier: Apache-2.0
// Thin RAII over the SQLite C API: a connection with a per-connection cache
// of prepared statements, a scoped statement use that resets on exit, and a
// transaction guard that rolls back unless committed. Internal to lib/.
#pragma once

#include "claudegate/base/errors.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace claudegate::sqlite {

struct ConnectionCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using ConnectionHandle = std::unique_ptr<sqlite3, ConnectionCloser>;

struct StatementFinalizer {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};
using StatementHandle = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// What to tell the operator about a failing SQLite call on `path`.
inline std::string advice_for(int code) {
  switch (code & 0xff) {
  case SQLITE_NOTADB:
  case SQLITE_CORRUPT:
    return "; the file is not a claudegate store or is damaged: move it aside and restore a backup";
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return "; another process holds the store for too long: retry";
  case SQLITE_CANTOPEN:
  case SQLITE_PERM:
  case SQLITE_READONLY:
  case SQLITE_AUTH:
    return "; check that the file and its folder are readable and writable by you";
  case SQLITE_FULL:
    return "; the disk is full: free some space";
  case SQLITE_IOERR:
    return "; the disk may be full, or the store's -wal/-shm files were removed or replaced: check free "
           "space (df) and that nothing else touches the store";
  default:
    return "";
  }
}

inline Error storage_error(std::string_view what, const std::string& path, int code,
                           std::string_view detail) {
  return Error{Errc::storage, fmt::format("cannot {} store {} ({}){}", what, path, detail, advice_for(code))};
}

// One use of a prepared statement: bind, step, read columns; reset on scope exit
// so the cached statement is clean for its next use.
class Query {
public:
  Query(sqlite3_stmt* statement, const std::string* path) : m_statement(statement), m_path(path) {}
  ~Query() { release(); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  Query(Query&& other) noexcept
      : m_statement(std::exchange(other.m_statement, nullptr)), m_path(other.m_path),
        m_bind_error(other.m_bind_error) {}
  Query& operator=(Query&&) = delete;

  Query& bind(int index, std::int64_t value) {
    return check(index, sqlite3_bind_int64(m_statement, index, value));
  }
  Query& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Query& bind(int index, std::string_view value) {
    return check(index, sqlite3_bind_text64(m_statement, index, value.data(), value.size(), SQLITE_TRANSIENT,
                                            SQLITE_UTF8));
  }
  Query& bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
  Query& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Query& bind(int index, std::optional<std::int64_t> value) {
    return value ? bind(index, *value) : check(index, sqlite3_bind_null(m_statement, index));
  }

  // Advance: true when a row is available, false when done.
  Result<bool> step() {
    if (m_bind_error != SQLITE_OK) {
      return std::unexpected(error(m_bind_error));
    }
    const int rc = sqlite3_step(m_statement);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc == SQLITE_DONE) {
      return false;
    }
    return std::unexpected(error(rc));
  }

  // Step to completion, calling `on_row()` for each row.
  template <typename OnRow> Result<void> for_each_row(OnRow on_row) {
    for (;;) {
      auto more = step();
      if (!more) {
        return propagate(more);
      }
      if (!*more) {
        return {};
      }
      on_row();
    }
  }

  // Every row as `read_row(*this)`, in order.
  template <typename T, typename ReadRow> Result<std::vector<T>> collect(ReadRow read_row) {
    std::vector<T> rows;
    auto done = for_each_row([&] { rows.push_back(read_row(*this)); });
    if (!done) {
      return propagate(done);
    }
    return rows;
  }

  // Step to completion, ignoring rows (INSERT/UPDATE/DELETE).
  Result<void> run() {
    return for_each_row([] {});
  }

  // Rows changed by the last run on this connection.
  std::int64_t changes() const { return sqlite3_changes64(sqlite3_db_handle(m_statement)); }

  bool is_null(int column) const { return sqlite3_column_type(m_statement, column) == SQLITE_NULL; }
  std::int64_t integer(int column) const { return sqlite3_column_int64(m_statement, column); }
  std::optional<std::int64_t> optional_integer(int column) const {
    return is_null(column) ? std::nullopt : std::optional<std::int64_t>(integer(column));
  }
  std::string text(int column) const {
    const auto* data = sqlite3_column_text(m_statement, column);
    const int size = sqlite3_column_bytes(m_statement, column);
    if (data == nullptr) {
      return {};
    }
    return std::string(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size));
  }

private:
  Query& check(int index, int rc) {
    if (rc != SQLITE_OK && m_bind_error == SQLITE_OK) {
      m_bind_error = rc;
      m_bind_index = index;
    }
    return *this;
  }
  Error error(int rc) const {
    sqlite3* db = sqlite3_db_handle(m_statement);
    const std::string where = m_bind_index > 0 ? fmt::format(" (parameter {})", m_bind_index) : "";
    const std::string detail =
        fmt::format("{}{}; statement: {}", sqlite3_errmsg(db), where, sqlite3_sql(m_statement));
    return storage_error("query", *m_path, rc, detail);
  }
  void release() {
    if (m_statement != nullptr) {
      sqlite3_reset(m_statement);
      sqlite3_clear_bindings(m_statement);
    }
  }

  sqlite3_stmt* m_statement;
  const std::string* m_path;
  int m_bind_error = SQLITE_OK;
  int m_bind_index = 0;
};

// An open database with its cache of prepared statements, keyed by SQL text.
class Connection {
public:
  // Open `path` read-write (it must exist). Fails with storage.
  static Result<Connection> open(const std::filesystem::path& path) {
    sqlite3* raw = nullptr;
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    ConnectionHandle db(raw);
    if (rc != SQLITE_OK) {
      const std::string detail = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
      return std::unexpected(storage_error("open", path.string(), rc, detail));
    }
    sqlite3_extended_result_codes(db.get(), 1);
    return Connection(std::move(db), path.string());
  }

  // The statement for `sql`, prepared once per connection. Fails with storage.
  Result<Query> prepare(const std::string& sql) {
    auto found = m_cache.find(sql);
    if (found == m_cache.end()) {
      sqlite3_stmt* raw = nullptr;
      const int rc = sqlite3_prepare_v3(m_db.get(), sql.c_str(), static_cast<int>(sql.size()),
                                        SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
      StatementHandle statement(raw);
      if (rc != SQLITE_OK) {
        return std::unexpected(error("prepare a query on", rc));
      }
      found = m_cache.emplace(sql, std::move(statement)).first;
    }
    return Query(found->second.get(), &m_path);
  }

  // Run `sql` (one or more statements, no parameters, rows ignored). Fails with storage.
  Result<void> exec(const std::string& sql) {
    const int rc = sqlite3_exec(m_db.get(), sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      return std::unexpected(error("run \"" + sql + "\" on", rc));
    }
    return {};
  }

  // Run the single parameterless statement `sql` from the statement cache
  // (BEGIN, COMMIT, a PRAGMA switch: parsed once, not per transaction).
  // Fails with storage.
  Result<void> run_cached(const std::string& sql) {
    auto query = prepare(sql);
    if (!query) {
      return propagate(query);
    }
    return query->run();
  }

  // The single integer that `sql` returns (a PRAGMA or an aggregate). Fails with storage.
  Result<std::int64_t> scalar(const std::string& sql) {
    auto query = prepare(sql);
    if (!query) {
      return propagate(query);
    }
    auto row = query->step();
    if (!row) {
      return propagate(row);
    }
    return *row ? query->integer(0) : 0;
  }

  Error error(std::string_view what, int rc) const {
    return storage_error(what, m_path, rc, sqlite3_errmsg(m_db.get()));
  }
  const std::string& path() const { return m_path; }
  sqlite3* get() const { return m_db.get(); }

private:
  Connection(ConnectionHandle db, std::string path) : m_db(std::move(db)), m_path(std::move(path)) {}

  ConnectionHandle m_db; // declared first: destroyed after the statements
  std::string m_path;
  std::unordered_map<std::string, StatementHandle> m_cache;
};

// A write transaction taken with BEGIN IMMEDIATE (the write lock up front, so
// a read-modify-write never fails half-way with SQLITE_BUSY); rolled back on
// scope exit unless committed.
class Transaction {
public:
  static Result<Transaction> begin_immediate(Connection& connection) {
    static const std::string begin = "BEGIN IMMEDIATE";
    if (auto begun = connection.run_cached(begin); !begun) {
      return propagate(begun);
    }
    return Transaction(connection);
  }
  ~Transaction() {
    if (m_connection != nullptr && sqlite3_get_autocommit(m_connection->get()) == 0) {
      sqlite3_exec(m_connection->get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction(Transaction&& other) noexcept : m_connection(std::exchange(other.m_connection, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;

  Result<void> commit() {
    static const std::string commit = "COMMIT";
    auto committed = m_connection->run_cached(commit);
    if (committed) {
      m_connection = nullptr;
    }
    return committed;
  }

private:
  explicit Transaction(Connection& connection) : m_connection(&connection) {}
  Connection* m_connection;
};

} // namespace claudegate::sqlite
