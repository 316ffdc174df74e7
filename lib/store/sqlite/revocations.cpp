// SPDX-License-Identifier: Apache-2.0
#include "sqlite_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <utility>

namespace claudegate::store::sqlite_backend {

namespace {

namespace sql {
const std::string k_revoke_jti =
    "INSERT INTO revoked_jtis (jti, subject, reason, revoked_at, expires_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (jti) DO UPDATE SET expires_at = COALESCE(revoked_jtis.expires_at, excluded.expires_at)";
const std::string k_revoke_subject =
    "INSERT INTO subject_cutoffs (subject, cutoff, reason, revoked_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (subject) DO UPDATE SET cutoff = excluded.cutoff, reason = excluded.reason, "
    "revoked_at = excluded.revoked_at WHERE excluded.cutoff > subject_cutoffs.cutoff";
// The live families of ?1 that a cut-off at ?2 stops at ?3: begun by then,
// not revoked, not expired, not already stopped by an earlier cut-off.
const std::string k_families_to_cut =
    "SELECT COUNT(*) FROM refresh_families f WHERE f.subject = ?1 AND f.created_at <= ?2 "
    "AND f.revoked_at IS NULL AND f.expires_at > ?3 "
    "AND NOT EXISTS (SELECT 1 FROM subject_cutoffs c "
    "WHERE c.subject = f.subject AND c.cutoff >= f.created_at) "
    "AND EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.family_id AND t.state = 'active' "
    "AND t.expires_at > ?3)";
const std::string k_revocation_epoch = "SELECT epoch FROM revocation_epoch WHERE id = 1";
// The three revocation lookups in one statement (one read transaction): each
// arm is a primary-key lookup; column 0 orders them jti, subject, family.
const std::string k_find_revocation =
    "SELECT 0, reason, revoked_at, expires_at FROM revoked_jtis WHERE jti = ?1 "
    "UNION ALL SELECT 1, reason, revoked_at, NULL FROM subject_cutoffs WHERE subject = ?2 AND cutoff >= ?3 "
    "UNION ALL SELECT 2, revoked_reason, revoked_at, NULL FROM refresh_families "
    "WHERE family_id = ?4 AND revoked_at IS NOT NULL";
const std::string k_list_revocations =
    "SELECT 'jti', jti, reason, revoked_at, expires_at FROM revoked_jtis "
    "UNION ALL SELECT 'subject', subject, reason, revoked_at, NULL FROM subject_cutoffs "
    "UNION ALL SELECT 'family', family_id, revoked_reason, revoked_at, NULL FROM refresh_families "
    "WHERE revoked_at IS NOT NULL ORDER BY 4 DESC, 1, 2";
const std::string k_prune = "DELETE FROM revoked_jtis WHERE expires_at IS NOT NULL AND expires_at < ?";
// Rows a prune keeps (no expiry, or not expired before ?1), counted and
// copied through the expiry index; the expired rows counted up to ?2 only.
const std::string k_count_survivors = "SELECT (SELECT COUNT(*) FROM revoked_jtis WHERE expires_at IS NULL) + "
                                      "(SELECT COUNT(*) FROM revoked_jtis WHERE expires_at >= ?1)";
const std::string k_count_expired_up_to =
    "SELECT COUNT(*) FROM (SELECT 1 FROM revoked_jtis WHERE expires_at < ?1 LIMIT ?2)";
const std::string k_create_survivors =
    "CREATE TEMP TABLE prune_survivors AS SELECT rowid AS id, jti, subject, reason, revoked_at, expires_at "
    "FROM main.revoked_jtis WHERE 0";
const std::string k_copy_survivors =
    "INSERT INTO temp.prune_survivors SELECT rowid, jti, subject, reason, revoked_at, expires_at "
    "FROM main.revoked_jtis WHERE expires_at IS NULL UNION ALL SELECT rowid, jti, subject, reason, "
    "revoked_at, expires_at FROM main.revoked_jtis WHERE expires_at >= ?1";
// Without a WHERE (and with no DELETE trigger) SQLite frees the table's and
// its indexes' pages whole instead of deleting row by row.
const std::string k_clear_revoked_jtis = "DELETE FROM main.revoked_jtis";
const std::string k_restore_survivors =
    "INSERT INTO main.revoked_jtis (rowid, jti, subject, reason, revoked_at, expires_at) "
    "SELECT id, jti, subject, reason, revoked_at, expires_at FROM temp.prune_survivors ORDER BY id";
const std::string k_drop_survivors = "DROP TABLE temp.prune_survivors";
const std::string k_set_revocation_epoch = "UPDATE revocation_epoch SET epoch = ?1 WHERE id = 1";
} // namespace sql

using rules::revocation_key;

// The revocation that applies to `token`, by one statement; when several
// apply, the jti's wins over the subject's, which wins over the family's.
Result<std::optional<Revocation>> find_first_revocation(Connection& db, const TokenIdentity& token) {
  auto query = db.prepare(sql::k_find_revocation);
  if (!query) {
    return propagate(query);
  }
  query->bind(1, token.jti).bind(2, token.subject).bind(3, token.issued_at);
  if (token.family_id) {
    query->bind(4, *token.family_id);
  }
  std::optional<Revocation> found;
  auto done = query->for_each_row([&] {
    const auto kind = static_cast<RevocationKind>(query->integer(0));
    if (!found || kind < found->kind) {
      found = Revocation{kind, revocation_key(token, kind), query->text(1), query->integer(2),
                         query->optional_integer(3)};
    }
  });
  return done ? Result<std::optional<Revocation>>(std::move(found)) : propagate(done);
}

// ---- pruning the deny-list -----------------------------------------------------------

// Below this many expired rows a prune deletes them in place.
constexpr std::int64_t k_min_prune_by_copy = 1024;

// Run `sql_text` (with `parameter` as ?1, when given) to completion: the rows it changed.
Result<std::int64_t> run_counting(Connection& db, const std::string& sql_text,
                                  std::optional<std::int64_t> parameter = std::nullopt) {
  auto query = db.prepare(sql_text);
  if (!query) {
    return propagate(query);
  }
  if (parameter) {
    query->bind(1, *parameter);
  }
  auto done = query->run();
  return done ? Result<std::int64_t>(query->changes()) : propagate(done);
}

// Keep the survivors aside, clear the table whole (its pages freed, not
// row by row), put them back with their rowids, in the caller's
// transaction: cost follows the survivors, not the expired rows. The
// schema (table, indexes, triggers) is untouched, and the revocation epoch
// is restored after the re-inserts' triggers moved it, as deleting in place
// leaves it. The count removed.
Result<std::int64_t> prune_by_copy(Connection& db, UnixSeconds cutoff) {
  auto epoch = db.scalar(sql::k_revocation_epoch);
  if (!epoch) {
    return propagate(epoch);
  }
  if (auto created = db.exec(sql::k_create_survivors); !created) {
    return propagate(created);
  }
  auto kept = run_counting(db, sql::k_copy_survivors, cutoff);
  auto cleared = kept ? run_counting(db, sql::k_clear_revoked_jtis) : kept;
  auto restored = cleared ? run_counting(db, sql::k_restore_survivors) : cleared;
  auto reset = restored ? run_counting(db, sql::k_set_revocation_epoch, *epoch) : restored;
  if (!reset) {
    return reset;
  }
  if (auto dropped = db.exec(sql::k_drop_survivors); !dropped) {
    return propagate(dropped);
  }
  return *cleared - *kept;
}

// Run `body` with PRAGMA secure_delete = FAST, then put the connection's
// setting back. Debian's SQLite defaults to secure_delete = 1, which zeroes
// (and so writes) every page a prune frees: for a million rows, tens of
// thousands of page writes, most of the prune's time. FAST still zeroes
// deleted rows inside pages that are written anyway; freed pages keep
// their old bytes until reused (a deny-list holds jtis, subjects and
// reasons of expired tokens, no token or key).
template <typename Body> auto with_fast_delete(Connection& db, Body&& body) -> decltype(body()) {
  static const std::string k_read = "PRAGMA secure_delete";
  static const std::array<std::string, 3> k_set = {"PRAGMA secure_delete = 0", "PRAGMA secure_delete = 1",
                                                   "PRAGMA secure_delete = FAST"};
  auto previous = db.scalar(k_read);
  if (!previous) {
    return propagate(previous);
  }
  if (auto fast = db.run_cached(k_set[2]); !fast) {
    return propagate(fast);
  }
  auto result = body();
  auto restored =
      db.run_cached(k_set.at(static_cast<std::size_t>(std::clamp<std::int64_t>(*previous, 0, 2))));
  return restored ? result : propagate(restored);
}

// Drop the deny-list rows that expired before `cutoff`, in the caller's
// transaction: by copying the survivors when the expired rows outnumber
// them (a large, mostly expired list), else in place. The count removed.
Result<std::int64_t> prune_rows(Connection& db, UnixSeconds cutoff) {
  auto survivors = single(db, sql::k_count_survivors, [&](Query& q) { q.bind(1, cutoff); });
  if (!survivors) {
    return survivors;
  }
  const std::int64_t enough = std::max(*survivors + 1, k_min_prune_by_copy);
  auto expired = single(db, sql::k_count_expired_up_to, [&](Query& q) { q.bind(1, cutoff).bind(2, enough); });
  if (!expired) {
    return expired;
  }
  return *expired >= enough ? prune_by_copy(db, cutoff) : run_counting(db, sql::k_prune, cutoff);
}

} // namespace

Result<void> SqliteStore::revoke_jti(const std::string& jti, std::optional<UnixSeconds> expires_at,
                                     const std::string& subject, const std::string& reason, UnixSeconds now) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&] {
    return run(m_db, sql::k_revoke_jti, [&](Query& q) {
      q.bind(1, jti).bind(2, subject).bind(3, reason).bind(4, now).bind(5, expires_at);
    });
  });
}

// Rotation refuses the families the cut-off covers (check_presentable);
// counted here, before the cut-off is written, so a repeated revoke counts 0.
Result<std::int64_t> SqliteStore::revoke_subject(const std::string& subject, UnixSeconds cutoff,
                                                 const std::string& reason, UnixSeconds now) {
  const std::lock_guard lock(m_mutex);
  std::int64_t families = 0;
  auto written = write(Durability::full, [&]() -> Result<void> {
    auto counted = single(m_db, sql::k_families_to_cut,
                          [&](Query& q) { q.bind(1, subject).bind(2, cutoff).bind(3, now); });
    if (!counted) {
      return propagate(counted);
    }
    families = *counted;
    return run(m_db, sql::k_revoke_subject,
               [&](Query& q) { q.bind(1, subject).bind(2, cutoff).bind(3, reason).bind(4, now); });
  });
  return written ? Result<std::int64_t>(families) : propagate(written);
}

Result<std::optional<Revocation>> SqliteStore::find_revocation(const TokenIdentity& token) {
  const std::lock_guard lock(m_mutex);
  if (auto placed = check_in_place(m_db); !placed) {
    return propagate(placed);
  }
  return find_first_revocation(m_db, token);
}

Result<bool> SqliteStore::wait_for_revocation(std::chrono::milliseconds timeout) {
  const std::lock_guard lock(m_events_mutex); // never the connection's: the wait blocks
  if (!m_events) {
    auto events = FileEvents::watch(m_db.path());
    if (!events) {
      return propagate(events);
    }
    m_events.emplace(std::move(*events));
  }
  return m_events->wait(timeout);
}

Result<std::int64_t> SqliteStore::revocation_epoch() {
  const std::lock_guard lock(m_mutex);
  if (auto placed = check_in_place(m_db); !placed) {
    return propagate(placed);
  }
  auto query = m_db.prepare(sql::k_revocation_epoch);
  if (!query) {
    return propagate(query);
  }
  auto row = query->step();
  if (!row) {
    return propagate(row);
  }
  if (!*row) {
    return fail(Errc::storage, fmt::format("store {} has no revocation epoch row; it was edited by hand: "
                                           "restore it from a backup",
                                           m_db.path()));
  }
  return query->integer(0);
}

Result<std::vector<Revocation>> SqliteStore::list_revocations() {
  const std::lock_guard lock(m_mutex);
  auto query = m_db.prepare(sql::k_list_revocations);
  if (!query) {
    return propagate(query);
  }
  return query->collect<Revocation>([](const Query& row) {
    return Revocation{rules::revocation_kind_from_name(row.text(0)), row.text(1), row.text(2), row.integer(3),
                      row.optional_integer(4)};
  });
}

Result<std::int64_t> SqliteStore::prune(UnixSeconds now, std::int64_t leeway) {
  const std::lock_guard lock(m_mutex);
  std::int64_t removed = 0;
  auto pruned = with_fast_delete(m_db, [&] {
    return write(Durability::full, [&]() -> Result<void> {
      auto rows = prune_rows(m_db, now - leeway);
      if (!rows) {
        return propagate(rows);
      }
      removed = *rows;
      return {};
    });
  });
  return pruned ? Result<std::int64_t>(removed) : propagate(pruned);
}

} // namespace claudegate::store::sqlite_backend

namespace claudegate::store {

std::string_view revocation_kind_name(RevocationKind kind) {
  switch (kind) {
  case RevocationKind::jti:
    return "jti";
  case RevocationKind::subject:
    return "subject";
  case RevocationKind::family:
    return "family";
  }
  return "jti";
}

} // namespace claudegate::store
