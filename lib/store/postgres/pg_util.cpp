// SPDX-License-Identifier: Apache-2.0
#include "pg_util.hpp"

#include "claudegate/store/open.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cstring>

namespace claudegate::store::pg {

namespace {

constexpr const char* k_default_connect_timeout = "5";

// The value of option `keyword` in connection URI `uri`, "" when unset.
std::string uri_option(const std::string& uri, std::string_view keyword) {
  char* message = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &message);
  PQfreemem(message);
  std::string value;
  for (auto* option = options; option != nullptr && option->keyword != nullptr; ++option) {
    if (keyword == option->keyword && option->val != nullptr) {
      value = option->val;
    }
  }
  PQconninfoFree(options);
  return value;
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

} // namespace

Server server_of(const std::string& uri) {
  StoreLocation location{StoreLocation::Backend::postgresql, {}, uri};
  return Server{uri, location.display(), uri_option(uri, "password")};
}

Error storage_error(const Server& server, std::string_view op, std::string_view detail, bool unreachable) {
  std::string why = trimmed(std::string(detail));
  // libpq does not echo passwords; should it ever, the message still must not.
  for (std::size_t at = 0;
       server.password.size() >= 3 && (at = why.find(server.password, at)) != std::string::npos;) {
    why.replace(at, server.password.size(), "***");
  }
  std::ranges::replace(why, '\n', ' ');
  return Error{Errc::storage, fmt::format("cannot {} in PostgreSQL store {} ({}){}", op, server.shown, why,
                                          unreachable ? "; check that the server is up and reachable" : "")};
}

ArrayLiteral& ArrayLiteral::add_raw(std::string_view element) {
  if (m_text.size() > 1) {
    m_text += ',';
  }
  m_text += element;
  return *this;
}

ArrayLiteral& ArrayLiteral::add(std::string_view text) {
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
    }
    quoted += c;
  }
  quoted += '"';
  return add_raw(quoted);
}

std::int64_t Rows::integer(int row, int column) const {
  const char* text = PQgetvalue(m_result.get(), row, column);
  std::int64_t value = 0;
  std::from_chars(text, text + std::strlen(text), value);
  return value;
}

std::optional<std::int64_t> Rows::optional_integer(int row, int column) const {
  return is_null(row, column) ? std::nullopt : std::optional<std::int64_t>(integer(row, column));
}

std::optional<std::string> Rows::optional_text(int row, int column) const {
  return is_null(row, column) ? std::nullopt : std::optional<std::string>(text(row, column));
}

std::int64_t Rows::affected() const {
  const char* text = PQcmdTuples(m_result.get());
  std::int64_t value = 0;
  std::from_chars(text, text + std::strlen(text), value);
  return value;
}

Result<Connection> Connection::open(const Server& server) {
  // Keywords before the expanded dbname are overridden by the URI's own.
  const bool has_timeout = !uri_option(server.uri, "connect_timeout").empty();
  const std::array<const char*, 3> keywords = {has_timeout ? "dbname" : "connect_timeout",
                                               has_timeout ? nullptr : "dbname", nullptr};
  const std::array<const char*, 3> values = {has_timeout ? server.uri.c_str() : k_default_connect_timeout,
                                             has_timeout ? nullptr : server.uri.c_str(), nullptr};
  ConnectionHandle conn(PQconnectdbParams(keywords.data(), values.data(), 1));
  if (conn == nullptr) {
    return std::unexpected(storage_error(server, "connect", "out of memory"));
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return std::unexpected(storage_error(server, "connect", PQerrorMessage(conn.get())));
  }
  // Notices ("relation already exists, skipping", a server going down) are
  // not for the terminal: what matters comes back as a failed call.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return Connection(std::move(conn), server);
}

Error Connection::error(const PGresult* result) const {
  const char* message = result != nullptr ? PQresultErrorMessage(result) : nullptr;
  const bool empty = message == nullptr || *message == '\0';
  return storage_error(*m_server, m_op, empty ? PQerrorMessage(m_conn.get()) : message, broken());
}

Result<ResultHandle> Connection::checked(PGresult* raw) const {
  ResultHandle result(raw);
  const auto status = result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    return result;
  }
  return std::unexpected(error(result.get()));
}

Result<Rows> Connection::query(const std::string& sql, const Params& params) {
  auto known = m_prepared.find(sql);
  if (known == m_prepared.end()) {
    std::string name = fmt::format("cg{}", m_prepared.size());
    auto prepared = checked(PQprepare(m_conn.get(), name.c_str(), sql.c_str(), 0, nullptr));
    if (!prepared) {
      return propagate(prepared);
    }
    known = m_prepared.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.values().size());
  for (const auto& value : params.values()) {
    values.push_back(value ? value->c_str() : nullptr);
  }
  auto result = checked(PQexecPrepared(m_conn.get(), known->second.c_str(), static_cast<int>(values.size()),
                                       values.data(), nullptr, nullptr, 0));
  return result ? Result<Rows>(Rows(std::move(*result))) : propagate(result);
}

Result<void> Connection::exec(const std::string& sql) {
  auto result = checked(PQexec(m_conn.get(), sql.c_str()));
  return result ? Result<void>{} : propagate(result);
}

Result<Transaction> Transaction::begin(Connection& conn) {
  if (auto begun = conn.exec("BEGIN"); !begun) {
    return propagate(begun);
  }
  return Transaction(conn);
}

Result<void> Transaction::commit() {
  Connection* conn = std::exchange(m_conn, nullptr);
  return conn->exec("COMMIT");
}

Transaction::~Transaction() {
  if (m_conn != nullptr && !m_conn->broken()) {
    (void)m_conn->exec("ROLLBACK");
  }
}

} // namespace claudegate::store::pg
