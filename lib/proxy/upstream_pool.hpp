// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "upstream_connect.hpp"

#include <boost/asio/execution_context.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

// Idle keep-alive upstream connections, one pool per io_context: a
// connection is only ever used on the io_context (the io thread) that
// opened it, and dies with it.
namespace claudegate::proxy {

// An asio service of an io_context: the idle connections of every
// http_upstream that ran there, by the upstream's key. The io_context closes
// them when it shuts down, so no socket outlives its io_context.
class UpstreamPools final : public asio::execution_context::service {
public:
  using key_type = UpstreamPools;
  static asio::execution_context::id id;

  explicit UpstreamPools(asio::execution_context& context) : service(context) {}

  // The most recently used idle connection of upstream `upstream`; null when none.
  std::unique_ptr<Connection> take(std::uint64_t upstream);
  // Keep `connection` (idle after a complete keep-alive response) for `upstream`;
  // dropped (closed) when `upstream` already keeps k_max_idle.
  void give(std::uint64_t upstream, std::unique_ptr<Connection> connection);
  // Idle connections kept for `upstream`, for tests.
  std::size_t idle(std::uint64_t upstream);

  static constexpr std::size_t k_max_idle = 64;

private:
  void shutdown() override;

  // Taken briefly (no I/O under it): an io_context normally runs on one thread.
  std::mutex m_mutex;
  std::unordered_map<std::uint64_t, std::vector<std::unique_ptr<Connection>>> m_idle;
};

// The pools of the io_context that runs `executor`.
UpstreamPools& pools_of(const asio::any_io_executor& executor);

// A key no other http_upstream of this process has (never reused, unlike an address).
std::uint64_t new_pool_key();

} // namespace claudegate::proxy
