// SPDX-License-Identifier: Apache-2.0
#include "sqlite_store.hpp"

#include "claudegate/base/duration.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

namespace claudegate::store::sqlite_backend {

namespace {

constexpr std::string_view k_reuse_reason = "refresh token reuse";

namespace sql {
const std::string k_insert_family =
    "INSERT INTO refresh_families (family_id, subject, grant_json, created_at, "
    "expires_at) VALUES (?, ?, ?, ?, ?)";
const std::string k_insert_token = "INSERT INTO refresh_tokens (token_hash, family_id, generation, state, "
                                   "issued_at, expires_at) VALUES (?, ?, ?, 'active', ?, ?)";
// With the subject's cut-off when it covers the family (revoke --sub after the family began).
const std::string k_find_presented =
    "SELECT t.family_id, t.generation, t.state, t.expires_at, f.subject, f.grant_json, f.expires_at, "
    "f.revoked_at, c.cutoff FROM refresh_tokens t "
    "JOIN refresh_families f ON f.family_id = t.family_id "
    "LEFT JOIN subject_cutoffs c ON c.subject = f.subject AND c.cutoff >= f.created_at "
    "WHERE t.token_hash = ?";
const std::string k_mark_used =
    "UPDATE refresh_tokens SET state = 'used', used_at = ? WHERE token_hash = ? AND state = 'active'";
const std::string k_family_of = "SELECT family_id FROM refresh_tokens WHERE token_hash = ?";
const std::string k_revoke_family = "UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? "
                                    "WHERE family_id = ? AND revoked_at IS NULL";
const std::string k_revoke_family_tokens =
    "UPDATE refresh_tokens SET state = 'revoked' WHERE family_id = ? AND state = 'active'";
const std::string k_family_exists = "SELECT 1 FROM refresh_families WHERE family_id = ?";
} // namespace sql

Result<std::optional<PresentedToken>> find_presented(Connection& db, const std::string& token_hash) {
  auto query = db.prepare(sql::k_find_presented);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, token_hash);
  auto row = query->step();
  if (!row || !*row) {
    return row ? Result<std::optional<PresentedToken>>(std::nullopt) : propagate(row);
  }
  PresentedToken token{query->text(0),    static_cast<int>(query->integer(1)),
                       query->text(2),    query->integer(3),
                       query->text(4),    query->text(5),
                       query->integer(6), !query->is_null(7)};
  if (!query->is_null(8)) {
    token.subject_cutoff = query->integer(8);
  }
  return token;
}

using rules::check_presentable;
using rules::subject_cut_off;

Result<void> insert_token(Connection& db, const std::string& token_hash, const std::string& family_id,
                          int generation, UnixSeconds issued_at, UnixSeconds expires_at) {
  return run(db, sql::k_insert_token, [&](Query& q) {
    q.bind(1, token_hash).bind(2, family_id).bind(3, generation).bind(4, issued_at).bind(5, expires_at);
  });
}
// Mark the family revoked and retire its active token; false when it was already revoked.
Result<bool> revoke_family_rows(Connection& db, const std::string& family_id, const std::string& reason,
                                UnixSeconds now) {
  auto query = db.prepare(sql::k_revoke_family);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, now).bind(2, reason).bind(3, family_id);
  if (auto done = query->run(); !done) {
    return propagate(done);
  }
  const bool changed = query->changes() > 0;
  auto retired = run(db, sql::k_revoke_family_tokens, [&](Query& q) { q.bind(1, family_id); });
  return retired ? Result<bool>(changed) : propagate(retired);
}

// Mark the presented token used and record its successor; what mint re-issues.
Result<RotatedFamily> record_successor(Connection& db, const PresentedToken& token,
                                       const Rotation& rotation) {
  auto used =
      run(db, sql::k_mark_used, [&](Query& q) { q.bind(1, rotation.now).bind(2, rotation.presented_hash); });
  if (!used) {
    return propagate(used);
  }
  RotatedFamily rotated{token.family_id, token.subject, json::Json::parse(token.grant_json, nullptr, false),
                        token.generation + 1,
                        std::min(rotation.now + rotation.refresh_ttl, token.family_expires_at)};
  if (rotated.grant.is_discarded()) {
    return fail(Errc::storage, fmt::format("refresh family {} has an unreadable grant in store {}",
                                           token.family_id, db.path()));
  }
  auto inserted = insert_token(db, rotation.new_hash, token.family_id, rotated.generation, rotation.now,
                               rotated.token_expires_at);
  return inserted ? Result<RotatedFamily>(std::move(rotated)) : propagate(inserted);
}

} // namespace

Result<void> SqliteStore::create_family(const NewFamily& family) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&]() -> Result<void> {
    auto inserted = run(m_db, sql::k_insert_family, [&](Query& q) {
      q.bind(1, family.family_id).bind(2, family.subject).bind(3, family.grant.dump());
      q.bind(4, family.created_at).bind(5, family.expires_at);
    });
    if (!inserted) {
      return inserted;
    }
    return insert_token(m_db, family.token_hash, family.family_id, 0, family.created_at,
                        family.token_expires_at);
  });
}

Result<RotatedFamily> SqliteStore::rotate(const Rotation& rotation, const MintFn& mint) {
  const std::lock_guard lock(m_mutex);
  auto tx = begin(Durability::full);
  if (!tx) {
    return propagate(tx);
  }
  auto presented = find_presented(m_db, rotation.presented_hash);
  if (!presented) {
    return propagate(presented);
  }
  if (!*presented) {
    return fail(Errc::claim_mismatch, "unknown refresh token");
  }
  if (auto usable = check_presentable(**presented, rotation.now); !usable) {
    const bool reuse = usable.error().code == Errc::refresh_reuse;
    return reuse ? punish_reuse(*tx, **presented, rotation.now, usable.error()) : propagate(usable);
  }
  auto rotated = record_successor(m_db, **presented, rotation);
  if (!rotated) {
    return rotated;
  }
  // A failed mint returns here and the guard rolls the rotation back.
  if (auto minted = mint(*rotated); !minted) {
    return propagate(minted);
  }
  auto committed = tx->commit();
  return committed ? rotated : propagate(committed);
}

// A used token came back: someone holds a copy. Revoke the family (and with
// it every access token carrying its fid), audit, commit, report the reuse.
Result<RotatedFamily> SqliteStore::punish_reuse(Transaction& tx, const PresentedToken& token, UnixSeconds now,
                                                const Error& reuse) {
  auto revoked = revoke_family_rows(m_db, token.family_id, std::string(k_reuse_reason), now);
  if (!revoked) {
    return propagate(revoked);
  }
  const json::Json detail = {{"family_id", token.family_id}, {"generation", token.generation}};
  auto audited = insert_audit(m_db, {now, "refresh_reuse", token.subject, detail.dump()});
  if (!audited) {
    return propagate(audited);
  }
  auto committed = tx.commit();
  return committed ? std::unexpected(reuse) : propagate(committed);
}

Result<std::optional<std::string>> SqliteStore::family_of(const std::string& token_hash) {
  const std::lock_guard lock(m_mutex);
  auto query = m_db.prepare(sql::k_family_of);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, token_hash);
  auto row = query->step();
  if (!row) {
    return propagate(row);
  }
  return *row ? std::optional<std::string>(query->text(0)) : std::nullopt;
}

Result<void> SqliteStore::revoke_family(const std::string& family_id, const std::string& reason,
                                        UnixSeconds now) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&]() -> Result<void> {
    auto exists = single(m_db, sql::k_family_exists, [&](Query& q) { q.bind(1, family_id); });
    if (!exists) {
      return propagate(exists);
    }
    if (*exists == 0) {
      return fail(Errc::claim_mismatch, fmt::format("unknown refresh family {}", family_id));
    }
    auto revoked = revoke_family_rows(m_db, family_id, reason, now);
    return revoked ? Result<void>{} : propagate(revoked);
  });
}

} // namespace claudegate::store::sqlite_backend
