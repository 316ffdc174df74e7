// SPDX-License-Identifier: Apache-2.0
// Thin RAII over libpq: a connection (PQfinish) with a per-connection cache
// of prepared statements taking text parameters, a result (PQclear), and a
// transaction guard that rolls back unless committed. Errors are storage
// and name the operation and the server by its masked URI, never the
// password. Internal to lib/store/postgres/.
#pragma once

#include "claudegate/base/errors.hpp"

#include <libpq-fe.h>

#include <array>
#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace claudegate::store::pg {

struct ResultClear {
  void operator()(PGresult* result) const { PQclear(result); }
};
using ResultHandle = std::unique_ptr<PGresult, ResultClear>;

struct ConnectionFinish {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using ConnectionHandle = std::unique_ptr<PGconn, ConnectionFinish>;

// Who the server is: the URI to connect with, how messages show it
// (password masked) and the password itself, only to scrub it from
// messages should libpq ever echo it.
struct Server {
  std::string uri;
  std::string shown;
  std::string password;
};

// The server of `uri` (its password read by libpq's own parser).
Server server_of(const std::string& uri);

// A storage error: `op` failed on `server`, with PostgreSQL's `detail`;
// `unreachable` adds what to check when the connection is the problem.
Error storage_error(const Server& server, std::string_view op, std::string_view detail,
                    bool unreachable = true);

// A PostgreSQL array literal built element by element, for statements that
// take a batch as arrays (`unnest($1::bigint[], $2::text[])`): text is quoted
// and escaped, nullopt is NULL.
class ArrayLiteral {
public:
  template <std::integral T> ArrayLiteral& add(T value) { return add_raw(std::to_string(value)); }
  ArrayLiteral& add(std::string_view text);
  ArrayLiteral& add(const std::optional<std::int64_t>& value) {
    return value ? add(*value) : add_raw("NULL");
  }
  std::string str() const { return m_text + "}"; }

private:
  ArrayLiteral& add_raw(std::string_view element);
  std::string m_text = "{";
};

// Text parameters of a statement, $1 onwards; nullopt is NULL.
class Params {
public:
  template <std::integral T> Params& add(T value) {
    m_values.emplace_back(std::to_string(value));
    return *this;
  }
  Params& add(const std::string& value) {
    m_values.emplace_back(value);
    return *this;
  }
  Params& add(std::string_view value) {
    m_values.emplace_back(std::string(value));
    return *this;
  }
  Params& add(const char* value) { return add(std::string_view(value)); }
  Params& add(const ArrayLiteral& value) {
    m_values.emplace_back(value.str());
    return *this;
  }
  // Each of `columns` in turn: a batch statement's column arrays.
  template <std::size_t N> static Params of(const std::array<ArrayLiteral, N>& columns) {
    Params params;
    for (const auto& column : columns) {
      params.add(column);
    }
    return params;
  }
  Params& add(const std::optional<std::int64_t>& value) {
    m_values.push_back(value.transform([](std::int64_t v) { return std::to_string(v); }));
    return *this;
  }
  Params& add(const std::optional<std::string>& value) {
    m_values.push_back(value);
    return *this;
  }
  const std::vector<std::optional<std::string>>& values() const { return m_values; }

private:
  std::vector<std::optional<std::string>> m_values;
};

// The rows of a statement (text format); copies share the one PGresult.
class Rows {
public:
  explicit Rows(ResultHandle result) : m_result(result.release(), ResultClear{}) {}

  int size() const { return PQntuples(m_result.get()); }
  bool is_null(int row, int column) const { return PQgetisnull(m_result.get(), row, column) != 0; }
  std::string text(int row, int column) const { return PQgetvalue(m_result.get(), row, column); }
  std::int64_t integer(int row, int column) const;
  std::optional<std::int64_t> optional_integer(int row, int column) const;
  std::optional<std::string> optional_text(int row, int column) const;
  // The first column of the first row, 0 when there is no row or it is NULL.
  std::int64_t scalar() const { return size() > 0 ? integer(0, 0) : 0; }
  // The rows an INSERT/UPDATE/DELETE changed.
  std::int64_t affected() const;

private:
  std::shared_ptr<PGresult> m_result;
};

// One connection to the server, used by one thread at a time.
class Connection {
public:
  // Connect (connect_timeout 5 s unless the URI sets one). Fails with storage.
  static Result<Connection> open(const Server& server);

  // What the connection is used for now, named in its errors ("rotate a refresh token").
  void set_op(std::string_view op) { m_op = op; }
  std::string_view op() const { return m_op; }

  // Run `sql` as a prepared statement (prepared once per connection) with `params`.
  Result<Rows> query(const std::string& sql, const Params& params = {});
  // Run `sql` (one or more statements, no parameters) as a simple query.
  Result<void> exec(const std::string& sql);

  // The connection was lost (the server went away, a backend was killed).
  bool broken() const { return PQstatus(m_conn.get()) != CONNECTION_OK; }
  PGconn* get() const { return m_conn.get(); }
  const Server& server() const { return *m_server; }
  Error error(const PGresult* result) const;

private:
  Connection(ConnectionHandle conn, const Server& server) : m_conn(std::move(conn)), m_server(&server) {}
  Result<ResultHandle> checked(PGresult* raw) const;

  ConnectionHandle m_conn;
  const Server* m_server;
  std::unordered_map<std::string, std::string> m_prepared; // sql → statement name
  std::string_view m_op = "use";
};

// BEGIN … COMMIT on a connection; ROLLBACK when destroyed uncommitted.
class Transaction {
public:
  static Result<Transaction> begin(Connection& conn);
  Transaction(Transaction&& other) noexcept : m_conn(std::exchange(other.m_conn, nullptr)) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  Result<void> commit();

private:
  explicit Transaction(Connection& conn) : m_conn(&conn) {}
  Connection* m_conn;
};

} // namespace claudegate::store::pg
