// SPDX-License-Identifier: Apache-2.0
// Revocations on PostgreSQL: the deny-list, subject cut-offs, the lookup,
// the epoch (moved by the schema's triggers, which also NOTIFY) and its
// listener for wait_for_revocation.
#include "pg_store.hpp"

#include <fmt/format.h>

#include <poll.h>

#include <string>
#include <thread>
#include <utility>

namespace claudegate::store::pg {

namespace {

constexpr const char* k_channel = "claudegate_revocation";

namespace sql {
const std::string k_revoke_jti =
    "INSERT INTO revoked_jtis (jti, subject, reason, revoked_at, expires_at) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (jti) DO UPDATE SET expires_at = COALESCE(revoked_jtis.expires_at, excluded.expires_at)";
const std::string k_revoke_subject =
    "INSERT INTO subject_cutoffs (subject, cutoff, reason, revoked_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (subject) DO UPDATE SET cutoff = excluded.cutoff, reason = excluded.reason, "
    "revoked_at = excluded.revoked_at WHERE excluded.cutoff > subject_cutoffs.cutoff";
// Serialises revocations of one subject, so two counting the same families
// never both count them.
const std::string k_lock_cutoff = "SELECT pg_advisory_xact_lock(1, hashtext($1))";
const std::string k_families_to_cut =
    "SELECT COUNT(*) FROM refresh_families f WHERE f.subject = $1 AND f.created_at <= $2 "
    "AND f.revoked_at IS NULL AND f.expires_at > $3 "
    "AND NOT EXISTS (SELECT 1 FROM subject_cutoffs c "
    "WHERE c.subject = f.subject AND c.cutoff >= f.created_at) "
    "AND EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.family_id AND t.state = 'active' "
    "AND t.expires_at > $3)";
const std::string k_revocation_epoch = "SELECT epoch FROM revocation_epoch WHERE id = 1";
const std::string k_find_revocation =
    "SELECT 0, reason, revoked_at, expires_at FROM revoked_jtis WHERE jti = $1 "
    "UNION ALL SELECT 1, reason, revoked_at, NULL FROM subject_cutoffs WHERE subject = $2 AND cutoff >= $3 "
    "UNION ALL SELECT 2, revoked_reason, revoked_at, NULL FROM refresh_families "
    "WHERE family_id = $4 AND revoked_at IS NOT NULL";
const std::string k_list_revocations =
    "SELECT kind, key, reason, revoked_at, expires_at FROM ("
    "SELECT 'jti' AS kind, jti AS key, reason, revoked_at, expires_at FROM revoked_jtis "
    "UNION ALL SELECT 'subject', subject, reason, revoked_at, NULL FROM subject_cutoffs "
    "UNION ALL SELECT 'family', family_id, revoked_reason, revoked_at, NULL FROM refresh_families "
    "WHERE revoked_at IS NOT NULL) r ORDER BY revoked_at DESC, kind COLLATE \"C\", key COLLATE \"C\"";
const std::string k_prune = "DELETE FROM revoked_jtis WHERE expires_at IS NOT NULL AND expires_at < $1";
} // namespace sql

using rules::revocation_key;

} // namespace

Result<void> PgStore::revoke_jti(const std::string& jti, std::optional<UnixSeconds> expires_at,
                                 const std::string& subject, const std::string& reason, UnixSeconds now) {
  return transaction("revoke a token", [&](Connection& db) -> Result<void> {
    auto done =
        db.query(sql::k_revoke_jti, Params().add(jti).add(subject).add(reason).add(now).add(expires_at));
    return done ? Result<void>{} : propagate(done);
  });
}

// Counted before the cut-off is written, so a repeated revoke counts 0.
Result<std::int64_t> PgStore::revoke_subject(const std::string& subject, UnixSeconds cutoff,
                                             const std::string& reason, UnixSeconds now) {
  std::int64_t families = 0;
  auto written = transaction("revoke a subject", [&](Connection& db) -> Result<void> {
    auto locked = db.query(sql::k_lock_cutoff, Params().add(subject));
    auto counted =
        locked ? db.query(sql::k_families_to_cut, Params().add(subject).add(cutoff).add(now)) : locked;
    if (!counted) {
      return propagate(counted);
    }
    families = counted->scalar();
    auto done = db.query(sql::k_revoke_subject, Params().add(subject).add(cutoff).add(reason).add(now));
    return done ? Result<void>{} : propagate(done);
  });
  return written ? Result<std::int64_t>(families) : propagate(written);
}

// When several apply, the jti's wins over the subject's, over the family's.
Result<std::optional<Revocation>> PgStore::find_revocation(const TokenIdentity& token) {
  return with_connection("check a revocation", [&](Connection& db) -> Result<std::optional<Revocation>> {
    auto rows =
        db.query(sql::k_find_revocation,
                 Params().add(token.jti).add(token.subject).add(token.issued_at).add(token.family_id));
    if (!rows) {
      return propagate(rows);
    }
    std::optional<Revocation> found;
    for (int row = 0; row < rows->size(); ++row) {
      const auto kind = static_cast<RevocationKind>(rows->integer(row, 0));
      if (!found || kind < found->kind) {
        found = Revocation{kind, revocation_key(token, kind), rows->text(row, 1), rows->integer(row, 2),
                           rows->optional_integer(row, 3)};
      }
    }
    return found;
  });
}

Result<std::int64_t> PgStore::revocation_epoch() {
  return with_connection("read the revocation epoch", [&](Connection& db) -> Result<std::int64_t> {
    auto rows = db.query(sql::k_revocation_epoch);
    if (!rows) {
      return propagate(rows);
    }
    if (rows->size() == 0) {
      return fail(Errc::storage, fmt::format("store {} has no revocation epoch row; it was edited by hand: "
                                             "restore it from a backup",
                                             m_server.shown));
    }
    return rows->integer(0, 0);
  });
}

Result<bool> PgStore::wait_for_revocation(std::chrono::milliseconds timeout) {
  return m_listener.wait(timeout);
}

Result<std::vector<Revocation>> PgStore::list_revocations() {
  return with_connection("list revocations", [&](Connection& db) -> Result<std::vector<Revocation>> {
    auto rows = db.query(sql::k_list_revocations);
    if (!rows) {
      return propagate(rows);
    }
    std::vector<Revocation> list;
    for (int row = 0; row < rows->size(); ++row) {
      list.push_back(Revocation{rules::revocation_kind_from_name(rows->text(row, 0)), rows->text(row, 1),
                                rows->text(row, 2), rows->integer(row, 3), rows->optional_integer(row, 4)});
    }
    return list;
  });
}

Result<std::int64_t> PgStore::prune(UnixSeconds now, std::int64_t leeway) {
  return with_connection("prune revocations", [&](Connection& db) -> Result<std::int64_t> {
    auto rows = db.query(sql::k_prune, Params().add(now - leeway));
    return rows ? Result<std::int64_t>(rows->affected()) : propagate(rows);
  });
}

// ---- the listener ---------------------------------------------------------------------

// Connect and LISTEN (paced by the backoff after a failure).
Result<void> RevocationListener::listen() {
  const auto now = std::chrono::steady_clock::now();
  if (!m_backoff.due(now)) {
    return std::unexpected(storage_error(m_server, "listen for revocations", "the server was unreachable"));
  }
  m_conn.reset();
  auto conn = Connection::open(m_server);
  if (conn) {
    conn->set_op("listen for revocations");
  }
  auto listening = conn ? conn->exec(fmt::format("LISTEN {}", k_channel)) : propagate(conn);
  if (!listening) {
    m_backoff.failed(std::chrono::steady_clock::now());
    return listening;
  }
  m_backoff.succeeded();
  m_conn.emplace(std::move(*conn));
  return {};
}

// Read what the server sent; true when a notification came. Fails (and
// drops the connection) when it is lost.
Result<bool> RevocationListener::drain() {
  if (PQconsumeInput(m_conn->get()) == 0 || m_conn->broken()) {
    Error lost = m_conn->error(nullptr);
    m_conn.reset();
    return std::unexpected(std::move(lost));
  }
  bool notified = false;
  while (PGnotify* notify = PQnotifies(m_conn->get())) {
    notified = true;
    PQfreemem(notify);
  }
  return notified;
}

// Waits the whole timeout when it fails early, so a caller polling in a
// loop never spins while the server is away.
Result<bool> RevocationListener::wait(std::chrono::milliseconds timeout) {
  const std::lock_guard lock(m_mutex);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto failed = [&](const Error& error) -> Result<bool> {
    std::this_thread::sleep_until(deadline);
    return std::unexpected(error);
  };
  if (!m_conn) {
    if (auto listening = listen(); !listening) {
      return failed(listening.error());
    }
  }
  for (;;) {
    auto notified = drain();
    if (!notified) {
      return failed(notified.error());
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (*notified || left.count() <= 0) {
      return *notified;
    }
    pollfd watched{PQsocket(m_conn->get()), POLLIN, 0};
    if (::poll(&watched, 1, static_cast<int>(left.count())) == 0) {
      return false;
    }
  }
}

} // namespace claudegate::store::pg
