// SPDX-License-Identifier: Apache-2.0
#include "metrics.hpp"

#include <fmt/core.h>

namespace claudegate::proxy {

namespace {

void render_family(std::string& out, std::string_view name, std::string_view help, std::string_view label,
                   const std::map<std::string, std::int64_t>& counters) {
  out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name);
  for (const auto& [value, count] : counters) {
    out += fmt::format("{}{{{}=\"{}\"}} {}\n", name, label, value, count);
  }
}

} // namespace

void Metrics::count_labelled(std::map<std::string, std::int64_t>& counters, std::string_view label) {
  const std::lock_guard lock(m_mutex);
  ++counters[std::string(label)];
}

void Metrics::count_request(int status) {
  count_labelled(m_requests, std::to_string(status));
}

void Metrics::count_auth_failure(std::string_view reason) {
  count_labelled(m_auth_failures, reason);
}

void Metrics::count_quota_rejection(std::string_view kind) {
  count_labelled(m_quota_rejections, kind);
}

void Metrics::observe_upstream(std::int64_t latency_ms) {
  const std::lock_guard lock(m_mutex);
  const double seconds = static_cast<double>(latency_ms) / 1000.0;
  for (std::size_t i = 0; i < k_buckets.size(); ++i) {
    if (seconds <= k_buckets[i]) {
      ++m_latency_buckets[i];
    }
  }
  ++m_latency_count;
  m_latency_sum += seconds;
}

void Metrics::count_tokens(std::int64_t input, std::int64_t output, std::int64_t cache_read,
                           std::int64_t cache_write) {
  const std::lock_guard lock(m_mutex);
  m_tokens["input"] += input;
  m_tokens["output"] += output;
  m_tokens["cache_read"] += cache_read;
  m_tokens["cache_write"] += cache_write;
}

std::string Metrics::render_latency() const {
  std::string out = "# HELP claudegate_upstream_latency_seconds Upstream response time (to the last byte)\n"
                    "# TYPE claudegate_upstream_latency_seconds histogram\n";
  for (std::size_t i = 0; i < k_buckets.size(); ++i) {
    out += fmt::format("claudegate_upstream_latency_seconds_bucket{{le=\"{}\"}} {}\n", k_buckets[i],
                       m_latency_buckets[i]);
  }
  out += fmt::format("claudegate_upstream_latency_seconds_bucket{{le=\"+Inf\"}} {}\n", m_latency_count);
  out += fmt::format("claudegate_upstream_latency_seconds_sum {}\n", m_latency_sum);
  out += fmt::format("claudegate_upstream_latency_seconds_count {}\n", m_latency_count);
  return out;
}

std::string Metrics::render() const {
  const std::lock_guard lock(m_mutex);
  std::string out;
  render_family(out, "claudegate_requests_total", "HTTP responses by status", "status", m_requests);
  render_family(out, "claudegate_auth_failures_total", "Rejected credentials by reason", "reason",
                m_auth_failures);
  render_family(out, "claudegate_quota_rejections_total", "429 answers by limit", "limit",
                m_quota_rejections);
  render_family(out, "claudegate_tokens_total", "Tokens metered by kind", "kind", m_tokens);
  out += render_latency();
  return out;
}

} // namespace claudegate::proxy
