// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/store/sqlite.hpp"
#include "claudegate/store/store.hpp"

#include "scratch_dir.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>

#include <optional>
#include <string>

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

// A store in a scratch folder, with its path for a second, raw connection.
struct ScratchStore {
  ScratchDir dir;
  std::filesystem::path path = dir.path() / "claudegate.db";
  std::unique_ptr<store::Store> store = open();

  std::unique_ptr<store::Store> open() const {
    auto opened = store::open_sqlite(path);
    REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message));
    return std::move(*opened);
  }

  // Run `sql` through the sqlite3 library directly, as an operator's shell would.
  void raw(const std::string& sql) const {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
  }
};

} // namespace claudegate::test
