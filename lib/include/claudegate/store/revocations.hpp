// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The store's role for revocations: the jti deny-list, subject cut-offs,
// the lookup every verification makes and the epoch that caches follow.
namespace claudegate::store {

enum class RevocationKind { jti, subject, family };

std::string_view revocation_kind_name(RevocationKind kind);

struct Revocation {
  RevocationKind kind = RevocationKind::jti;
  std::string key; // the jti, subject or family id
  std::string reason;
  UnixSeconds revoked_at = 0;
  std::optional<UnixSeconds> expires_at; // jti: the token's exp, for pruning
};

// What of a verified token the revocation check looks at.
struct TokenIdentity {
  std::string jti;
  std::string subject;
  UnixSeconds issued_at = 0;
  std::optional<std::string> family_id;
};

// Revocations, one role of a Store.
class RevocationStore {
public:
  virtual ~RevocationStore() = default;

  // Deny-list `jti` until `expires_at` (idempotent).
  virtual Result<void> revoke_jti(const std::string& jti, std::optional<UnixSeconds> expires_at,
                                  const std::string& subject, const std::string& reason, UnixSeconds now) = 0;

  // Revoke every token of `subject` issued at or before `cutoff`, and stop
  // its refresh families begun by then (rotate fails with revoked).
  // Idempotent; keeps the latest cut-off. Gives the number of live families
  // (at `now`) this call stopped that no earlier cut-off had. Fails with storage.
  virtual Result<std::int64_t> revoke_subject(const std::string& subject, UnixSeconds cutoff,
                                              const std::string& reason, UnixSeconds now) = 0;

  // The revocation that applies to `token`, if any: jti deny-list, subject
  // cut-off (iat ≤ cut-off) or revoked family. Never confuses "not revoked"
  // with a database failure (storage).
  virtual Result<std::optional<Revocation>> find_revocation(const TokenIdentity& token) = 0;

  // A number that changes whenever a revocation is written (by any process):
  // results of find_revocation stay true while it stays the same. Fails with storage.
  virtual Result<std::int64_t> revocation_epoch() = 0;

  // Wait at most `timeout` for a revocation written by any process, and
  // say whether one was pushed (true: revocation_epoch has likely moved).
  // A backend without push (SQLite) sleeps `timeout` and gives false;
  // PostgreSQL listens (LISTEN/NOTIFY) on this object's own connection.
  // Callers poll revocation_epoch after each wait either way. Fails with storage.
  virtual Result<bool> wait_for_revocation(std::chrono::milliseconds timeout);

  // Every revocation, newest first.
  virtual Result<std::vector<Revocation>> list_revocations() = 0;

  // Drop deny-list rows whose tokens expired before now − leeway; the count removed.
  virtual Result<std::int64_t> prune(UnixSeconds now, std::int64_t leeway) = 0;
};

} // namespace claudegate::store
