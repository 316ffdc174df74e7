// SPDX-License-Identifier: Apache-2.0
#include "pool.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace claudegate::store::pg {

void Backoff::failed(std::chrono::steady_clock::time_point now) {
  m_wait = std::clamp(m_wait * 2, std::chrono::milliseconds(k_first_backoff),
                      std::chrono::milliseconds(k_max_backoff));
  m_next = now + m_wait;
}

PooledConnection::~PooledConnection() {
  if (m_pool != nullptr) {
    m_pool->release(m_slot);
  }
}

Connection& PooledConnection::operator*() const {
  return *m_pool->m_slots[m_slot].conn;
}

void Pool::release(std::size_t slot) {
  {
    const std::lock_guard lock(m_mutex);
    Slot& held = m_slots[slot];
    if (held.conn && held.conn->broken()) {
      held.conn.reset();
      ++m_generation;
    }
    m_idle.push_back(slot);
  }
  m_returned.notify_one();
}

// (Re)connect `slot`, paced by the pool's backoff. Called without the lock
// held but with the slot taken, so only the backoff needs it.
Result<void> Pool::connect(Slot& slot, std::string_view op) {
  std::uint64_t generation = 0;
  {
    const std::lock_guard lock(m_mutex);
    const auto now = std::chrono::steady_clock::now();
    if (!m_backoff.due(now)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(m_backoff.next() - now);
      return std::unexpected(storage_error(
          m_server, op, fmt::format("the server was unreachable; reconnecting in {} ms", left.count())));
    }
    generation = m_generation;
  }
  slot.conn.reset();
  auto conn = Connection::open(m_server);
  const std::lock_guard lock(m_mutex);
  if (!conn) {
    m_backoff.failed(std::chrono::steady_clock::now());
    Error error = conn.error();
    error.message = fmt::format("{} (while trying to {})", error.message, op);
    return std::unexpected(std::move(error));
  }
  m_backoff.succeeded();
  slot.conn.emplace(std::move(*conn));
  slot.generation = generation;
  return {};
}

Result<PooledConnection> Pool::acquire(std::string_view op) {
  std::size_t index = 0;
  bool stale = false;
  {
    std::unique_lock lock(m_mutex);
    if (m_idle.empty() && m_opened < k_max_connections) {
      m_idle.push_back(m_opened++);
    }
    m_returned.wait(lock, [&] { return !m_idle.empty(); });
    index = m_idle.back();
    m_idle.pop_back();
    const Slot& slot = m_slots[index];
    stale = !slot.conn || slot.conn->broken() || slot.generation < m_generation;
  }
  PooledConnection held(*this, index);
  if (stale) {
    if (auto connected = connect(m_slots[index], op); !connected) {
      return propagate(connected);
    }
  }
  held->set_op(op);
  return held;
}

} // namespace claudegate::store::pg
