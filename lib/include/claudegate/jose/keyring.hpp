// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/jose/keys.hpp"
#include "claudegate/jose/keyset.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace claudegate::keyring {

// active: signs new tokens (exactly one); published: verifies tokens it
// signed until they have all expired; retired: kept on disk, never used.
enum class KeyState { active, published, retired };

std::string_view key_state_name(KeyState state);

struct KeyRecord {
  std::string kid;
  keys::Alg alg = keys::Alg::RS256;
  KeyState state = KeyState::active;
  int bits = 0;
  UnixSeconds created_at = 0;
  std::optional<UnixSeconds> published_at; // when rotated out of active
  std::optional<UnixSeconds> retire_at;    // when it stops verifying
  std::string file;                        // file name inside keys/
};

enum class Rotation { yes, no };

// The keys/ folder of a claudegate home: one private key file per key
// (PKCS#8 PEM, or an oct JWK for HS256, mode 0600) and index.json with
// each key's kid, alg, state and times. Loaded once; keys are parsed at open.
class Keyring {
public:
  // Open the keyring in `dir` at `now` (a missing folder is an empty ring).
  // Published keys whose retire_at has passed become retired (persisted).
  // Fails with config (`dir`, the index or a key file is a symbolic link,
  // owned by another user, or writable by group/others: fs::check_private),
  // io (unreadable, group/world-readable key file, bad index) or malformed
  // (a key file that does not parse).
  static Result<Keyring> open(const std::filesystem::path& dir, UnixSeconds now);

  const std::vector<KeyRecord>& records() const { return m_records; }

  // The active signing key. Fails with config ("no signing key yet; run
  // claudegate keygen") when there is none.
  Result<const keys::Key*> signer() const;

  // Active + published keys, by kid.
  const keyset::KeySet& verification_keys() const { return m_keys; }

  // Active + published asymmetric keys, for the JWKS.
  std::vector<const keys::Key*> public_keys() const;

  // Store `key` at `now`: writes the key file (0600) and the index
  // atomically, creating `dir` (0700). Rotation::no fails with config when
  // an active key exists; Rotation::yes makes `key` active and the old
  // active key published until now + `retire_after` seconds. A kid already
  // in the ring fails with config.
  Result<KeyRecord> add(const keys::Key& key, Rotation rotation, UnixSeconds now, std::int64_t retire_after);

private:
  std::filesystem::path m_dir;
  std::vector<KeyRecord> m_records;
  keyset::KeySet m_keys;
};

} // namespace claudegate::keyring
