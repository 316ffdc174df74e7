// SPDX-License-Identifier: Apache-2.0
#include "upstream_pool.hpp"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>

#include <atomic>

namespace claudegate::proxy {

asio::execution_context::id UpstreamPools::id;

std::unique_ptr<Connection> UpstreamPools::take(std::uint64_t upstream) {
  const std::lock_guard lock(m_mutex);
  const auto it = m_idle.find(upstream);
  if (it == m_idle.end() || it->second.empty()) {
    return nullptr;
  }
  auto connection = std::move(it->second.back());
  it->second.pop_back();
  return connection;
}

void UpstreamPools::give(std::uint64_t upstream, std::unique_ptr<Connection> connection) {
  const std::lock_guard lock(m_mutex);
  auto& idle = m_idle[upstream];
  if (idle.size() < k_max_idle) {
    idle.push_back(std::move(connection));
  }
}

std::size_t UpstreamPools::idle(std::uint64_t upstream) {
  const std::lock_guard lock(m_mutex);
  const auto it = m_idle.find(upstream);
  return it == m_idle.end() ? 0 : it->second.size();
}

void UpstreamPools::shutdown() {
  const std::lock_guard lock(m_mutex);
  m_idle.clear();
}

UpstreamPools& pools_of(const asio::any_io_executor& executor) {
  return asio::use_service<UpstreamPools>(asio::query(executor, asio::execution::context));
}

std::uint64_t new_pool_key() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1);
}

} // namespace claudegate::proxy
