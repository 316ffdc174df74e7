// SPDX-License-Identifier: Apache-2.0
// Refresh families on PostgreSQL: single-use rotation across processes by
// SELECT … FOR UPDATE of the presented token and its family (a concurrent
// rotation of the same token waits, then sees it used: reuse).
#include "pg_store.hpp"

#include "claudegate/base/duration.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

namespace claudegate::store::pg {

namespace {

constexpr std::string_view k_reuse_reason = "refresh token reuse";

namespace sql {
const std::string k_insert_family =
    "INSERT INTO refresh_families (family_id, subject, grant_json, created_at, "
    "expires_at) VALUES ($1, $2, $3, $4, $5)";
const std::string k_insert_token = "INSERT INTO refresh_tokens (token_hash, family_id, generation, state, "
                                   "issued_at, expires_at) VALUES ($1, $2, $3, 'active', $4, $5)";
// Locks the token and its family until the rotation's transaction ends.
const std::string k_lock_presented = "SELECT t.family_id FROM refresh_tokens t JOIN refresh_families f "
                                     "ON f.family_id = t.family_id WHERE t.token_hash = $1 FOR UPDATE";
const std::string k_find_presented =
    "SELECT t.family_id, t.generation, t.state, t.expires_at, f.subject, f.grant_json, f.expires_at, "
    "f.revoked_at, c.cutoff FROM refresh_tokens t "
    "JOIN refresh_families f ON f.family_id = t.family_id "
    "LEFT JOIN subject_cutoffs c ON c.subject = f.subject AND c.cutoff >= f.created_at "
    "WHERE t.token_hash = $1";
const std::string k_mark_used =
    "UPDATE refresh_tokens SET state = 'used', used_at = $1 WHERE token_hash = $2 AND state = 'active'";
const std::string k_family_of = "SELECT family_id FROM refresh_tokens WHERE token_hash = $1";
const std::string k_revoke_family = "UPDATE refresh_families SET revoked_at = $1, revoked_reason = $2 "
                                    "WHERE family_id = $3 AND revoked_at IS NULL";
const std::string k_revoke_family_tokens =
    "UPDATE refresh_tokens SET state = 'revoked' WHERE family_id = $1 AND state = 'active'";
const std::string k_family_exists = "SELECT 1 FROM refresh_families WHERE family_id = $1 FOR UPDATE";
} // namespace sql

// The presented token, locked (FOR UPDATE) so that a concurrent rotation
// of it waits for this one's commit and then finds it used.
Result<std::optional<PresentedToken>> find_presented(Connection& db, const std::string& token_hash) {
  auto locked = db.query(sql::k_lock_presented, Params().add(token_hash));
  auto rows = locked ? db.query(sql::k_find_presented, Params().add(token_hash)) : locked;
  if (!rows) {
    return propagate(rows);
  }
  if (rows->size() == 0) {
    return std::optional<PresentedToken>{};
  }
  const Rows& r = *rows;
  PresentedToken token{r.text(0, 0),    static_cast<int>(r.integer(0, 1)),
                       r.text(0, 2),    r.integer(0, 3),
                       r.text(0, 4),    r.text(0, 5),
                       r.integer(0, 6), !r.is_null(0, 7)};
  token.subject_cutoff = r.optional_integer(0, 8);
  return token;
}

using rules::check_presentable;
using rules::subject_cut_off;

Result<void> insert_token(Connection& db, const std::string& token_hash, const std::string& family_id,
                          int generation, UnixSeconds issued_at, UnixSeconds expires_at) {
  auto done =
      db.query(sql::k_insert_token,
               Params().add(token_hash).add(family_id).add(generation).add(issued_at).add(expires_at));
  return done ? Result<void>{} : propagate(done);
}

// Mark the family revoked and retire its active token.
Result<void> revoke_family_rows(Connection& db, const std::string& family_id, const std::string& reason,
                                UnixSeconds now) {
  auto revoked = db.query(sql::k_revoke_family, Params().add(now).add(reason).add(family_id));
  auto retired = revoked ? db.query(sql::k_revoke_family_tokens, Params().add(family_id)) : revoked;
  return retired ? Result<void>{} : propagate(retired);
}

Result<RotatedFamily> record_successor(Connection& db, const PresentedToken& token,
                                       const Rotation& rotation) {
  auto used = db.query(sql::k_mark_used, Params().add(rotation.now).add(rotation.presented_hash));
  if (!used) {
    return propagate(used);
  }
  RotatedFamily rotated{token.family_id, token.subject, json::Json::parse(token.grant_json, nullptr, false),
                        token.generation + 1,
                        std::min(rotation.now + rotation.refresh_ttl, token.family_expires_at)};
  if (rotated.grant.is_discarded()) {
    return fail(Errc::storage, fmt::format("refresh family {} has an unreadable grant in store {}",
                                           token.family_id, db.server().shown));
  }
  auto inserted = insert_token(db, rotation.new_hash, token.family_id, rotated.generation, rotation.now,
                               rotated.token_expires_at);
  return inserted ? Result<RotatedFamily>(std::move(rotated)) : propagate(inserted);
}

} // namespace

Result<void> PgStore::create_family(const NewFamily& family) {
  return transaction("create a refresh family", [&](Connection& db) -> Result<void> {
    auto inserted = db.query(sql::k_insert_family, Params()
                                                       .add(family.family_id)
                                                       .add(family.subject)
                                                       .add(family.grant.dump())
                                                       .add(family.created_at)
                                                       .add(family.expires_at));
    if (!inserted) {
      return propagate(inserted);
    }
    return insert_token(db, family.token_hash, family.family_id, 0, family.created_at,
                        family.token_expires_at);
  });
}

Result<RotatedFamily> PgStore::rotate(const Rotation& rotation, const MintFn& mint) {
  return with_connection("rotate a refresh token", [&](Connection& db) -> Result<RotatedFamily> {
    auto tx = Transaction::begin(db);
    auto presented = tx ? find_presented(db, rotation.presented_hash) : propagate(tx);
    if (!presented) {
      return propagate(presented);
    }
    if (!*presented) {
      return fail(Errc::claim_mismatch, "unknown refresh token");
    }
    if (auto usable = check_presentable(**presented, rotation.now); !usable) {
      const bool reuse = usable.error().code == Errc::refresh_reuse;
      return reuse ? punish_reuse(db, *tx, **presented, rotation.now, usable.error()) : propagate(usable);
    }
    auto rotated = record_successor(db, **presented, rotation);
    if (!rotated) {
      return rotated;
    }
    // A failed mint returns here and the guard rolls the rotation back.
    if (auto minted = mint(*rotated); !minted) {
      return propagate(minted);
    }
    auto committed = tx->commit();
    return committed ? rotated : propagate(committed);
  });
}

// A used token came back: revoke the family, audit, commit, report the reuse.
Result<RotatedFamily> PgStore::punish_reuse(Connection& db, Transaction& tx, const PresentedToken& token,
                                            UnixSeconds now, const Error& reuse) {
  if (auto revoked = revoke_family_rows(db, token.family_id, std::string(k_reuse_reason), now); !revoked) {
    return propagate(revoked);
  }
  const json::Json detail = {{"family_id", token.family_id}, {"generation", token.generation}};
  if (auto audited = insert_audit(db, {now, "refresh_reuse", token.subject, detail.dump()}); !audited) {
    return propagate(audited);
  }
  auto committed = tx.commit();
  return committed ? std::unexpected(reuse) : propagate(committed);
}

Result<std::optional<std::string>> PgStore::family_of(const std::string& token_hash) {
  return with_connection(
      "look up a refresh token", [&](Connection& db) -> Result<std::optional<std::string>> {
        auto rows = db.query(sql::k_family_of, Params().add(token_hash));
        if (!rows) {
          return propagate(rows);
        }
        return rows->size() > 0 ? std::optional<std::string>(rows->text(0, 0)) : std::nullopt;
      });
}

Result<void> PgStore::revoke_family(const std::string& family_id, const std::string& reason,
                                    UnixSeconds now) {
  return transaction("revoke a refresh family", [&](Connection& db) -> Result<void> {
    auto exists = db.query(sql::k_family_exists, Params().add(family_id));
    if (!exists) {
      return propagate(exists);
    }
    if (exists->size() == 0) {
      return fail(Errc::claim_mismatch, fmt::format("unknown refresh family {}", family_id));
    }
    return revoke_family_rows(db, family_id, reason, now);
  });
}

} // namespace claudegate::store::pg
