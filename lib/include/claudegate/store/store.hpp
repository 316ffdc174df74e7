// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/store/api_keys.hpp"
#include "claudegate/store/audit.hpp"
#include "claudegate/store/families.hpp"
#include "claudegate/store/revocations.hpp"
#include "claudegate/store/usage.hpp"

// The persistent state of a gateway, as five roles a backend implements:
// refresh-token families (families.hpp), revocations (revocations.hpp), the
// usage ledger with quota reservations (usage.hpp), the audit log
// (audit.hpp) and API keys (api_keys.hpp). Code that needs one role takes
// that role, so a backend (SQLite here, PostgreSQL for replicas) can be
// built and tested a role at a time. SQLite is the embedded implementation
// (open_sqlite, claudegate/store/sqlite.hpp).
namespace claudegate::store {

// Every role at once: what a backend provides and serve-local holds.
class Store : public FamilyStore,
              public RevocationStore,
              public UsageStore,
              public AuditLog,
              public ApiKeyStore {
public:
  ~Store() override = default;
};

} // namespace claudegate::store
