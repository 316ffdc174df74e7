// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"

#include <optional>
#include <string>
#include <vector>

// API keys as the store keeps them: long-lived machine credentials
// ("cgk_<id>_<secret>", claudegate/store/api_key.hpp) of which only the
// SHA-256 of the secret is stored, with the grant they carry.
namespace claudegate::store {

struct ApiKeyRecord {
  std::string id;      // public, as `revoke --list` shows it and OAuth's client_id
  std::string name;    // the operator's label, may be empty
  std::string subject; // who the key's requests are metered under
  // What the key grants, as refresh families store it (grant::to_json of an
  // AccessTokenRequest): plan, scope, roles, daily_token_limit, extra claims.
  json::Json grant = json::Json::object();
  std::string secret_hash; // base64url SHA-256 of the secret; never the secret
  UnixSeconds created_at = 0;
  UnixSeconds expires_at = 0;
  std::optional<UnixSeconds> last_used_at; // coarse (touch_api_key)
  std::optional<UnixSeconds> revoked_at;
  std::optional<std::string> revoked_reason;
  std::optional<UnixSeconds> retires_at;   // rotated: valid until then
  std::optional<std::string> rotated_from; // the key this one replaced
};

// The API-key role of the store (Store has it as a base).
class ApiKeyStore {
public:
  virtual ~ApiKeyStore() = default;

  // Record new key `key` (id unique). Fails with storage (also on a duplicate id).
  virtual Result<void> create_api_key(const ApiKeyRecord& key) = 0;

  // Record `successor` (its rotated_from names the key it replaces) and let
  // that key work only until `predecessor_until`, in one transaction: a
  // failure leaves neither. Moves revocation_epoch on. Fails with
  // claim_mismatch when the predecessor is unknown, or storage.
  virtual Result<void> rotate_api_key(const ApiKeyRecord& successor, UnixSeconds predecessor_until) = 0;

  // The key with id `id`, if any. Fails with storage.
  virtual Result<std::optional<ApiKeyRecord>> find_api_key(const std::string& id) = 0;

  // Every key, newest first. Fails with storage.
  virtual Result<std::vector<ApiKeyRecord>> list_api_keys() = 0;

  // Revoke key `id` for `reason` at `now`; idempotent (the first revocation
  // stays). Moves revocation_epoch on. Fails with claim_mismatch when `id`
  // is unknown, or storage.
  virtual Result<void> revoke_api_key(const std::string& id, const std::string& reason, UnixSeconds now) = 0;

  // Let key `id` work only until `at` (a rotation's overlap); an earlier
  // retirement stays. Moves revocation_epoch on. Fails with claim_mismatch
  // when `id` is unknown, or storage.
  virtual Result<void> retire_api_key(const std::string& id, UnixSeconds at) = 0;

  // Note that key `id` was used at `now` (not durable at once; callers
  // throttle it). An unknown id is ignored. Fails with storage.
  virtual Result<void> touch_api_key(const std::string& id, UnixSeconds now) = 0;
};

} // namespace claudegate::store
