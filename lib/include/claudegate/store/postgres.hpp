// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/store/store.hpp"

#include <memory>
#include <string>

// The PostgreSQL backend of store::Store (lib/store/postgres/), for several
// gateways sharing one database server.
namespace claudegate::store {

// Connect to the database at libpq URI `uri` (password from the URI,
// PGPASSWORD or ~/.pgpass), migrate it to the current schema under an
// advisory lock (replicas starting together migrate once) and give the
// store. Refuses a newer schema untouched (storage). Connection failures
// fail with storage and name the server by the masked URI, never the password.
Result<std::unique_ptr<Store>> open_postgres(const std::string& uri);

} // namespace claudegate::store
