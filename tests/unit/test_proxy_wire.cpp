// SPDX-License-Identifier: Apache-2.0
#include "proxy/wire.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace claudegate::proxy;

namespace {

bool has(const httplib::Headers& headers, const std::string& name) {
  return headers.find(name) != headers.end();
}

httplib::Request request_with(httplib::Headers headers) {
  httplib::Request req;
  req.headers = std::move(headers);
  return req;
}

} // namespace

TEST_CASE("forward_headers keeps anthropic-* and drops credentials, hop-by-hop and pseudo headers") {
  const httplib::Headers client = {
      {"Authorization", "Bearer eyJ.client.jwt"},
      {"X-Api-Key", "eyJ.client.jwt"},
      {"anthropic-version", "2023-06-01"},
      {"anthropic-beta", "prompt-caching-2024-07-31"},
      {"Connection", "keep-alive, X-Private"},
      {"X-Private", "hop"},
      {"Keep-Alive", "timeout=5"},
      {"Transfer-Encoding", "chunked"},
      {"Host", "127.0.0.1:8787"},
      {"Content-Length", "42"},
      {"Accept-Encoding", "gzip"},
      {"REMOTE_ADDR", "10.0.0.1"},
      {"x-stainless-lang", "js"},
  };
  const auto out = forward_headers(client);
  CHECK(out.find("anthropic-version")->second == "2023-06-01");
  CHECK(out.find("anthropic-beta")->second == "prompt-caching-2024-07-31");
  CHECK(has(out, "x-stainless-lang"));
  for (const char* dropped :
       {"Authorization", "X-Api-Key", "Connection", "X-Private", "Keep-Alive", "Transfer-Encoding", "Host",
        "Content-Length", "Accept-Encoding", "REMOTE_ADDR"}) {
    CHECK_MESSAGE(!has(out, dropped), dropped);
  }
  CHECK(out.size() == 3);
}

TEST_CASE("relay_headers keeps request-id and drops org-wide rate limits and framing") {
  const httplib::Headers upstream = {
      {"request-id", "req_01"},
      {"anthropic-ratelimit-tokens-remaining", "999"},
      {"anthropic-organization-id", "org"},
      {"Content-Type", "application/json"},
      {"Content-Length", "10"},
      {"Content-Encoding", "gzip"},
      {"Transfer-Encoding", "chunked"},
      {"retry-after", "3"},
  };
  const auto out = relay_headers(upstream);
  CHECK(out.find("request-id")->second == "req_01");
  CHECK(has(out, "retry-after"));
  CHECK(has(out, "anthropic-organization-id"));
  CHECK(!has(out, "anthropic-ratelimit-tokens-remaining"));
  CHECK(!has(out, "Content-Type"));
  CHECK(!has(out, "Content-Length"));
  CHECK(!has(out, "Content-Encoding"));
  CHECK(!has(out, "Transfer-Encoding"));
}

TEST_CASE("presented_token reads Bearer (any case) before x-api-key") {
  CHECK(presented_token(request_with({{"Authorization", "Bearer abc"}})) == "abc");
  CHECK(presented_token(request_with({{"Authorization", "bearer   abc"}})) == "abc");
  CHECK(presented_token(request_with({{"x-api-key", "key"}})) == "key");
  CHECK(presented_token(request_with({{"Authorization", "Bearer abc"}, {"x-api-key", "key"}})) == "abc");
  CHECK(!presented_token(request_with({})).has_value());
  CHECK(!presented_token(request_with({{"Authorization", "Bearer    "}})).has_value());
  CHECK(!presented_token(request_with({{"Authorization", "Basic dXNlcjpwdw=="}})).has_value());
  CHECK(!presented_token(request_with({{"Authorization", "Bearer"}})).has_value());
}

TEST_CASE("write_rejection fills Anthropic's envelope and the retry headers") {
  httplib::Response res;
  write_rejection(res, Rejection(429, "rate_limit_error", "daily quota used", 3600, false), "req_x");
  CHECK(res.status == 429);
  CHECK(res.get_header_value("retry-after") == "3600");
  CHECK(res.get_header_value("x-should-retry") == "false");
  CHECK(res.get_header_value("request-id") == "req_x");
  CHECK(res.body.find(R"("type":"rate_limit_error")") != std::string::npos);
  CHECK(res.body.find("daily quota used") != std::string::npos);
  CHECK(!res.has_header("WWW-Authenticate"));

  httplib::Response unauthorized;
  write_rejection(unauthorized, Rejection(401, "authentication_error", "expired"), "req_y");
  CHECK(unauthorized.get_header_value("WWW-Authenticate") == "Bearer error=\"invalid_token\"");
  CHECK(!unauthorized.has_header("x-should-retry"));
  CHECK(!unauthorized.has_header("retry-after"));
}

TEST_CASE("error_type_for maps the gateway's statuses to Anthropic's error types") {
  CHECK(error_type_for(400) == "invalid_request_error");
  CHECK(error_type_for(401) == "authentication_error");
  CHECK(error_type_for(403) == "permission_error");
  CHECK(error_type_for(404) == "not_found_error");
  CHECK(error_type_for(413) == "request_too_large");
  CHECK(error_type_for(429) == "rate_limit_error");
  CHECK(error_type_for(502) == "api_error");
  CHECK(error_type_for(504) == "timeout_error");
}
