// SPDX-License-Identifier: Apache-2.0
// A small pool of libpq connections, each used by one thread at a time. A
// connection found broken is reconnected on its next use, with a backoff
// between failed attempts (50 ms doubling to 1 s) so a server that is down
// costs a caller one quick storage error, never a hang. Internal to
// lib/store/postgres/.
#pragma once

#include "pg_util.hpp"

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace claudegate::store::pg {

class Pool;

// A connection of the pool for one store call; back to the pool when destroyed.
class PooledConnection {
public:
  PooledConnection(Pool& pool, std::size_t slot) : m_pool(&pool), m_slot(slot) {}
  PooledConnection(PooledConnection&& other) noexcept
      : m_pool(std::exchange(other.m_pool, nullptr)), m_slot(other.m_slot) {}
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;
  PooledConnection& operator=(PooledConnection&&) = delete;
  ~PooledConnection();

  Connection& operator*() const;
  Connection* operator->() const { return &**this; }

private:
  Pool* m_pool;
  std::size_t m_slot;
};

// Reconnection pacing: the first attempt after a failure is immediate, then
// each failure doubles the wait (k_first_backoff … k_max_backoff).
class Backoff {
public:
  static constexpr auto k_first_backoff = std::chrono::milliseconds(50);
  static constexpr auto k_max_backoff = std::chrono::milliseconds(1000);

  bool due(std::chrono::steady_clock::time_point now) const { return now >= m_next; }
  std::chrono::steady_clock::time_point next() const { return m_next; }
  void failed(std::chrono::steady_clock::time_point now);
  void succeeded() { m_wait = std::chrono::milliseconds(0); }

private:
  std::chrono::milliseconds m_wait{0};
  std::chrono::steady_clock::time_point m_next{};
};

class Pool {
public:
  static constexpr std::size_t k_max_connections = 4;

  explicit Pool(const Server& server) : m_server(server) {}

  // A connection for `op`, connecting (or reconnecting) it when needed.
  // Fails with storage when the server cannot be reached, or while a failed
  // reconnection's backoff runs.
  Result<PooledConnection> acquire(std::string_view op);

private:
  friend class PooledConnection;
  struct Slot {
    std::optional<Connection> conn;
    std::uint64_t generation = 0; // of the pool when connected
  };
  void release(std::size_t slot);
  Result<void> connect(Slot& slot, std::string_view op);

  const Server& m_server;
  std::mutex m_mutex;
  std::condition_variable m_returned;
  std::array<Slot, k_max_connections> m_slots;
  std::size_t m_opened = 0;        // slots in use so far
  std::vector<std::size_t> m_idle; // most recently used last
  // Moves on when a connection is found broken: the others, likely cut by
  // the same restart, are reconnected on their next use instead of failing too.
  std::uint64_t m_generation = 0;
  Backoff m_backoff;
};

} // namespace claudegate::store::pg
