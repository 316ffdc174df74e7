// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

// The gateway's Prometheus counters: requests by status, upstream latency,
// tokens metered, authentication failures and quota rejections.
namespace claudegate::proxy {

class Metrics {
public:
  void count_request(int status);
  void count_auth_failure(std::string_view reason);
  void count_quota_rejection(std::string_view kind);
  void observe_upstream(std::int64_t latency_ms);
  void count_tokens(std::int64_t input, std::int64_t output, std::int64_t cache_read,
                    std::int64_t cache_write);

  // The Prometheus text exposition (version 0.0.4) of every counter.
  std::string render() const;

private:
  static constexpr std::array<double, 10> k_buckets = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120};

  void count_labelled(std::map<std::string, std::int64_t>& counters, std::string_view label);
  std::string render_latency() const;

  mutable std::mutex m_mutex;
  std::map<std::string, std::int64_t> m_requests;
  std::map<std::string, std::int64_t> m_auth_failures;
  std::map<std::string, std::int64_t> m_quota_rejections;
  std::array<std::int64_t, k_buckets.size()> m_latency_buckets{};
  std::int64_t m_latency_count = 0;
  double m_latency_sum = 0;
  std::map<std::string, std::int64_t> m_tokens;
};

} // namespace claudegate::proxy
