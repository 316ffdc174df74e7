// SPDX-License-Identifier: Apache-2.0
// The SQLite store's front: opening, transactions and their durability,
// group commit of metering writes, the audit log. The rows of each concept
// live beside it: schema.cpp, families.cpp, revocations.cpp, usage.cpp,
// api_keys.cpp.
#include "claudegate/store/sqlite.hpp"

#include "sqlite_store.hpp"

#include <memory>
#include <string>
#include <utility>

namespace claudegate::store::sqlite_backend {

namespace {

namespace sql {
const std::string k_insert_audit = "INSERT INTO audit_events (at, kind, subject, detail) VALUES (?, ?, ?, ?)";
} // namespace sql

} // namespace

Result<void> insert_audit(Connection& db, const AuditEvent& event) {
  return run(db, sql::k_insert_audit, [&](Query& q) {
    q.bind(1, event.at).bind(2, event.kind).bind(3, event.subject).bind(4, event.detail);
  });
}

// Security writes (families, revocations, audit) are fsynced at commit
// (synchronous=FULL); usage and reservations use NORMAL, which in WAL mode
// survives a crash of the process and becomes durable at the next FULL
// commit or checkpoint. The setting is per connection, so switch per transaction.
Result<Transaction> SqliteStore::begin(Durability durability) {
  if (auto placed = check_in_place(m_db); !placed) {
    return propagate(placed);
  }
  if (durability != m_durability) {
    static const std::string full = "PRAGMA synchronous = FULL";
    static const std::string normal = "PRAGMA synchronous = NORMAL";
    auto set = m_db.run_cached(durability == Durability::full ? full : normal);
    if (!set) {
      return propagate(set);
    }
    m_durability = durability;
  }
  return Transaction::begin_immediate(m_db);
}

Result<void> SqliteStore::batched(const std::function<Result<void>()>& body) {
  return m_metering.run(body, [this](std::span<GroupCommit::Job* const> jobs) { run_batch(jobs); });
}

// One transaction (synchronous=NORMAL, as every metering write) for a batch,
// each write under its own savepoint: a write that fails is undone alone; a
// transaction that cannot begin or commit fails them all, and nothing of
// theirs stays.
void SqliteStore::run_batch(std::span<GroupCommit::Job* const> jobs) {
  const std::lock_guard lock(m_mutex);
  auto tx = begin(Durability::normal);
  if (!tx) {
    for (auto* job : jobs) {
      job->result = propagate(tx);
    }
    return;
  }
  bool poisoned = false;
  for (auto* job : jobs) {
    job->result =
        poisoned ? Result<void>(fail(Errc::storage, "an earlier write of the same batch could not be undone"))
                 : in_savepoint(*job->body, poisoned);
  }
  const Result<void> committed =
      poisoned ? Result<void>(
          fail(Errc::storage, "a metering write could not be undone; the batch was rolled back"))
               : tx->commit();
  if (!committed) {
    for (auto* job : jobs) {
      job->result = job->result ? committed : job->result;
    }
  }
}

// `body` under a savepoint, rolled back to it when `body` fails; `poisoned`
// when even that failed (the transaction must not be committed).
Result<void> SqliteStore::in_savepoint(const std::function<Result<void>()>& body, bool& poisoned) {
  static const std::string open = "SAVEPOINT metering";
  static const std::string release = "RELEASE metering";
  static const std::string undo = "ROLLBACK TO metering";
  if (auto opened = m_db.run_cached(open); !opened) {
    poisoned = true;
    return opened;
  }
  auto done = body();
  if (!done && !m_db.run_cached(undo)) {
    poisoned = true;
  }
  if (auto released = m_db.run_cached(release); !released) {
    poisoned = true;
    return done ? released : done;
  }
  return done;
}

Result<void> SqliteStore::audit(const AuditEvent& event) {
  const std::lock_guard lock(m_mutex);
  return write(Durability::full, [&] { return insert_audit(m_db, event); });
}

} // namespace claudegate::store::sqlite_backend

namespace claudegate::store {

Result<std::unique_ptr<Store>> open_sqlite(const std::filesystem::path& path) {
  using namespace sqlite_backend;
  if (auto created = create_private_file(path); !created) {
    return propagate(created);
  }
  if (auto safe = check_store_files(path); !safe) {
    return propagate(safe);
  }
  auto db = Connection::open(path);
  if (!db) {
    return propagate(db);
  }
  if (auto ready = prepare_connection(*db); !ready) {
    return propagate(ready);
  }
  // Again now that WAL mode made the -wal/-shm, and in case a name changed meanwhile.
  if (auto safe = check_store_files(path); !safe) {
    return propagate(safe);
  }
  return std::make_unique<sqlite_backend::SqliteStore>(std::move(*db));
}

} // namespace claudegate::store
