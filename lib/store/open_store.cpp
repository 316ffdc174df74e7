// SPDX-License-Identifier: Apache-2.0
// Where the store lives (--db, CLAUDEGATE_DB, the config's store key): a
// path or "sqlite:PATH" for SQLite, a libpq URI for PostgreSQL; the URI
// shown with its password masked; opening the backend it names.
#include "claudegate/store/open.hpp"

#include "claudegate/store/postgres.hpp"
#include "claudegate/store/sqlite.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <memory>
#include <string>
#include <string_view>

namespace claudegate::store {

namespace {

constexpr std::string_view k_sqlite_prefix = "sqlite:";
constexpr std::string_view k_mask = "***";

bool is_postgres_uri(std::string_view text) {
  return text.starts_with("postgresql://") || text.starts_with("postgres://");
}

bool is_hex_escape(std::string_view text, std::size_t at) {
  const auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  return at + 2 < text.size() && hex(text[at + 1]) && hex(text[at + 2]);
}

// `key` with its valid %XX escapes decoded.
std::string percent_decoded(std::string_view key) {
  std::string out;
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (key[i] == '%' && is_hex_escape(key, i)) {
      out += static_cast<char>(std::stoi(std::string(key.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += key[i];
    }
  }
  return out;
}

// The userinfo password (between the first ':' after the scheme and the
// last '@') masked. Taking the last '@' over-masks rather than leaks when a
// password holds '/', '?' or '@'.
std::string mask_userinfo(std::string uri) {
  const std::size_t start = uri.find("://") + 3;
  const std::size_t at = uri.rfind('@');
  if (at == std::string::npos || at < start) {
    return uri;
  }
  const std::size_t colon = uri.find(':', start);
  if (colon == std::string::npos || colon > at) {
    return uri;
  }
  return uri.replace(colon + 1, at - colon - 1, k_mask);
}

// Every "password=" query parameter's value masked.
std::string mask_query(std::string uri) {
  const std::size_t at = uri.rfind('@');
  const std::size_t query = uri.find('?', at == std::string::npos ? 0 : at);
  if (query == std::string::npos) {
    return uri;
  }
  std::string out = uri.substr(0, query + 1);
  std::string_view rest = std::string_view(uri).substr(query + 1);
  for (bool first = true; !rest.empty() || first; first = false) {
    const std::size_t end = rest.find('&');
    const std::string_view part = rest.substr(0, end);
    const std::size_t equals = part.find('=');
    out += first ? "" : "&";
    if (equals != std::string_view::npos && percent_decoded(part.substr(0, equals)) == "password") {
      out += std::string(part.substr(0, equals + 1)) + std::string(k_mask);
    } else {
      out += part;
    }
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
  }
  return out;
}

std::string masked_uri(const std::string& uri) {
  return mask_query(mask_userinfo(uri));
}

// Check `uri` with libpq's own parser; its complaint (which never quotes
// the password) joins the masked URI in the error.
Result<void> check_uri(const std::string& uri) {
  char* message = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &message);
  if (options != nullptr) {
    PQconninfoFree(options);
    return {};
  }
  std::string why = message != nullptr ? message : "out of memory";
  PQfreemem(message);
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) {
    why.pop_back();
  }
  return fail(Errc::config, fmt::format("store location {} is not a valid PostgreSQL URI ({}); write it as "
                                        "postgresql://USER@HOST:PORT/DATABASE",
                                        masked_uri(uri), why));
}

} // namespace

std::string StoreLocation::display() const {
  return backend == Backend::postgresql ? masked_uri(uri) : path.string();
}

Result<StoreLocation> parse_store_location(std::string_view text) {
  if (text.empty()) {
    return fail(Errc::config, "the store location is empty; give a file path, sqlite:PATH or a "
                              "postgresql:// URI");
  }
  StoreLocation location;
  if (is_postgres_uri(text)) {
    location.backend = StoreLocation::Backend::postgresql;
    location.uri = std::string(text);
    auto valid = check_uri(location.uri);
    return valid ? Result<StoreLocation>(std::move(location)) : propagate(valid);
  }
  if (text.starts_with(k_sqlite_prefix)) {
    text.remove_prefix(k_sqlite_prefix.size());
    if (text.empty()) {
      return fail(Errc::config, "store location sqlite: names no file; write it as sqlite:PATH");
    }
  }
  location.path = std::filesystem::path(text);
  return location;
}

Result<std::unique_ptr<Store>> open_store(const StoreLocation& location) {
  if (location.backend == StoreLocation::Backend::postgresql) {
    return open_postgres(location.uri);
  }
  return open_sqlite(location.path);
}

} // namespace claudegate::store
