// SPDX-License-Identifier: Apache-2.0
#include "proxy/metrics.hpp"

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

using namespace claudegate::proxy;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

} // namespace

TEST_CASE("render exposes every counter family in Prometheus text") {
  Metrics metrics;
  metrics.count_request(200);
  metrics.count_request(200);
  metrics.count_request(401);
  metrics.count_auth_failure("expired");
  metrics.count_quota_rejection("daily");
  metrics.count_tokens(10, 20, 3, 4);
  metrics.count_tokens(1, 2, 0, 0);
  const std::string text = metrics.render();
  CHECK(has_line(text, "# TYPE claudegate_requests_total counter"));
  CHECK(has_line(text, R"(claudegate_requests_total{status="200"} 2)"));
  CHECK(has_line(text, R"(claudegate_requests_total{status="401"} 1)"));
  CHECK(has_line(text, R"(claudegate_auth_failures_total{reason="expired"} 1)"));
  CHECK(has_line(text, R"(claudegate_quota_rejections_total{limit="daily"} 1)"));
  CHECK(has_line(text, R"(claudegate_tokens_total{kind="input"} 11)"));
  CHECK(has_line(text, R"(claudegate_tokens_total{kind="output"} 22)"));
  CHECK(has_line(text, R"(claudegate_tokens_total{kind="cache_read"} 3)"));
  CHECK(has_line(text, R"(claudegate_tokens_total{kind="cache_write"} 4)"));
}

TEST_CASE("the latency histogram is cumulative with +Inf equal to the count") {
  Metrics metrics;
  metrics.observe_upstream(40);     // 0.04 s: every bucket
  metrics.observe_upstream(300);    // 0.3 s: from le=0.5
  metrics.observe_upstream(200000); // 200 s: only +Inf
  const std::string text = metrics.render();
  CHECK(has_line(text, "# TYPE claudegate_upstream_latency_seconds histogram"));
  CHECK(has_line(text, R"(claudegate_upstream_latency_seconds_bucket{le="0.05"} 1)"));
  CHECK(has_line(text, R"(claudegate_upstream_latency_seconds_bucket{le="0.25"} 1)"));
  CHECK(has_line(text, R"(claudegate_upstream_latency_seconds_bucket{le="0.5"} 2)"));
  CHECK(has_line(text, R"(claudegate_upstream_latency_seconds_bucket{le="120"} 2)"));
  CHECK(has_line(text, R"(claudegate_upstream_latency_seconds_bucket{le="+Inf"} 3)"));
  CHECK(has_line(text, "claudegate_upstream_latency_seconds_count 3"));
  CHECK(has_line(text, "claudegate_upstream_latency_seconds_sum 200.34"));
}

TEST_CASE("counters are exact under concurrent updates") {
  Metrics metrics;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&metrics] {
      for (int i = 0; i < 1000; ++i) {
        metrics.count_request(200);
        metrics.count_tokens(1, 1, 0, 0);
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  const std::string text = metrics.render();
  CHECK(has_line(text, R"(claudegate_requests_total{status="200"} 8000)"));
  CHECK(has_line(text, R"(claudegate_tokens_total{kind="input"} 8000)"));
}
