// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"

#include <string>

// The store's role for the audit log of security events.
namespace claudegate::store {

struct AuditEvent {
  UnixSeconds at = 0;
  std::string kind; // "refresh_reuse", "revoke", "family_revoked", …
  std::string subject;
  std::string detail; // JSON text; never a token or key
};

// The append-only audit log, one role of a Store.
class AuditLog {
public:
  virtual ~AuditLog() = default;

  // Append `event` to the audit log.
  virtual Result<void> audit(const AuditEvent& event) = 0;
};

} // namespace claudegate::store
