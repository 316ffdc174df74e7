// SPDX-License-Identifier: Apache-2.0
#include "proxy/wire.hpp"

#include <doctest/doctest.h>

#include <iterator>
#include <string>
#include <utility>
#include <vector>

using namespace claudegate::proxy;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

http::fields fields_of(const Pairs& pairs) {
  http::fields fields;
  for (const auto& [name, value] : pairs) {
    fields.insert(name, value);
  }
  return fields;
}

bool has(const http::fields& headers, const std::string& name) {
  return headers.find(name) != headers.end();
}

std::string value_of(const http::fields& headers, const std::string& name) {
  return std::string(headers.find(name)->value());
}

Request request_with(const Pairs& pairs) {
  Request req;
  req.headers = fields_of(pairs);
  return req;
}

} // namespace

TEST_CASE("forward_headers keeps anthropic-* and drops credentials, hop-by-hop and pseudo headers") {
  const http::fields client = fields_of({
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
  });
  const auto out = forward_headers(client);
  CHECK(value_of(out, "anthropic-version") == "2023-06-01");
  CHECK(value_of(out, "anthropic-beta") == "prompt-caching-2024-07-31");
  CHECK(has(out, "x-stainless-lang"));
  for (const char* dropped :
       {"Authorization", "X-Api-Key", "Connection", "X-Private", "Keep-Alive", "Transfer-Encoding", "Host",
        "Content-Length", "Accept-Encoding", "REMOTE_ADDR"}) {
    CHECK_MESSAGE(!has(out, dropped), dropped);
  }
  CHECK(std::distance(out.begin(), out.end()) == 3);
}

TEST_CASE("forward_headers forwards an allowlist only") {
  const http::fields client = fields_of({
      {"Content-Type", "application/json"},
      {"Accept", "application/json"},
      {"User-Agent", "claude-cli/2.1"},
      {"X-Stainless-Retry-Count", "0"},
      {"anthropic-dangerous-direct-browser-access", "true"},
      {"Cookie", "session=1"},
      {"Origin", "https://evil.example"},
      {"X-Forwarded-For", "10.1.2.3"},
      {"X-Real-IP", "10.1.2.3"},
      {"Forwarded", "for=10.1.2.3"},
      {"Referer", "https://evil.example/"},
      {"x-custom", "x"},
      {"Expect", "100-continue"},
      {"Content-Encoding", "gzip"},
      {"Connection", "anthropic-beta"},
      {"anthropic-beta", "named in Connection: hop-by-hop"},
  });
  const auto out = forward_headers(client);
  for (const char* kept : {"Content-Type", "Accept", "User-Agent", "X-Stainless-Retry-Count",
                           "anthropic-dangerous-direct-browser-access"}) {
    CHECK_MESSAGE(has(out, kept), kept);
  }
  CHECK(std::distance(out.begin(), out.end()) == 5);
}

TEST_CASE("relay_headers keeps request-id and drops org-wide rate limits and framing") {
  const http::fields upstream = fields_of({
      {"request-id", "req_01"},
      {"anthropic-ratelimit-tokens-remaining", "999"},
      {"anthropic-organization-id", "org"},
      {"Content-Type", "application/json"},
      {"Content-Length", "10"},
      {"Content-Encoding", "gzip"},
      {"Transfer-Encoding", "chunked"},
      {"retry-after", "3"},
  });
  const auto out = relay_headers(upstream);
  CHECK(value_of(out, "request-id") == "req_01");
  CHECK(has(out, "retry-after"));
  CHECK(has(out, "anthropic-organization-id"));
  CHECK(!has(out, "anthropic-ratelimit-tokens-remaining"));
  CHECK(!has(out, "Content-Type"));
  CHECK(!has(out, "Content-Length"));
  CHECK(!has(out, "Transfer-Encoding"));
}

TEST_CASE("relay_headers keeps Content-Encoding with the bytes it encodes and drops Server") {
  const auto out =
      relay_headers(fields_of({{"Content-Encoding", "gzip"}, {"Server", "envoy"}, {"request-id", "req_1"}}));
  CHECK(value_of(out, "Content-Encoding") == "gzip");
  CHECK(!has(out, "Server"));
  CHECK(std::distance(out.begin(), out.end()) == 2);
}

TEST_CASE("presented_token reads Bearer (any case) before x-api-key") {
  CHECK(presented_token(request_with({{"Authorization", "Bearer abc"}})) == "abc");
  CHECK(presented_token(request_with({{"Authorization", "bearer   abc"}})) == "abc");
  CHECK(presented_token(request_with({{"x-api-key", "key"}})) == "key");
  CHECK(presented_token(request_with({{"Authorization", "Bearer abc"}, {"x-api-key", "abc"}})) == "abc");
  CHECK(!presented_token(request_with({})).has_value());
  CHECK(!presented_token(request_with({{"Authorization", "Bearer    "}})).has_value());
  CHECK(!presented_token(request_with({{"Authorization", "Basic dXNlcjpwdw=="}})).has_value());
  CHECK(!presented_token(request_with({{"Authorization", "Bearer"}})).has_value());
}

TEST_CASE("presented_token refuses two credentials and says why there is none") {
  const auto problem = [](const Pairs& headers) {
    const auto token = presented_token(request_with(headers));
    REQUIRE(!token.has_value());
    return token.error();
  };
  CHECK(problem({{"Authorization", "Bearer abc"}, {"Authorization", "Bearer def"}}).reason == "ambiguous");
  CHECK(problem({{"Authorization", "Bearer abc"}, {"authorization", "Bearer abc"}}).reason == "ambiguous");
  CHECK(problem({{"x-api-key", "abc"}, {"X-Api-Key", "def"}}).reason == "ambiguous");
  const auto both = problem({{"Authorization", "Bearer abc"}, {"x-api-key", "def"}});
  CHECK(both.reason == "ambiguous");
  CHECK(both.message.find("different tokens") != std::string::npos);
  CHECK(problem({}).reason == "missing");
  CHECK(problem({{"Authorization", "Basic dXNlcjpwdw=="}, {"x-api-key", "abc"}}).reason == "malformed");
  CHECK(problem({{"Authorization", "Bearer\tabc"}}).reason == "malformed");
  CHECK(problem({{"Authorization", "Bearer   "}}).message.find("no token") != std::string::npos);
}

TEST_CASE("presented_token says an empty Bearer presents no token") {
  for (const char* empty : {"Bearer", "Bearer ", "bearer \t ", ""}) {
    CAPTURE(empty);
    const auto token = presented_token(request_with({{"Authorization", empty}}));
    REQUIRE(!token.has_value());
    CHECK(token.error().reason == "missing");
    CHECK(token.error().message.find("no token presented") != std::string::npos);
  }
  CHECK(presented_token(request_with({{"Authorization", "Bearer "}, {"x-api-key", "key"}})) == "key");
  CHECK(presented_token(request_with({{"Authorization", "Basic x"}})).error().message.find("must be")
        != std::string::npos);
}

TEST_CASE("check_request_head passes a sound head and gives a bodiless one Content-Length: 0") {
  const HeadLimits limits;
  const std::string post = "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n";
  CHECK(check_request_head(post, limits) == post);
  const std::string chunked = "POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n";
  CHECK(check_request_head(chunked, limits) == chunked);
  CHECK(check_request_head("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", limits)
        == "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  CHECK(check_request_head("GET / HTTP/1.1\r\nx-utf8: caf\xc3\xa9\t!\r\n\r\n", limits).has_value());
}

TEST_CASE("check_request_head refuses smuggling shapes with 400") {
  const HeadLimits limits;
  const auto status = [&](const std::string& fields) {
    const auto checked = check_request_head("POST /v1/messages HTTP/1.1\r\n" + fields + "\r\n", limits);
    return checked ? 0 : checked.error().status;
  };
  CHECK(status("Content-Length: 2\r\nContent-Length: 2\r\n") == 400);
  CHECK(status("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n") == 400);
  CHECK(status("Transfer-Encoding: gzip, chunked\r\n") == 400);
  CHECK(status("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n") == 400);
  CHECK(status("Content-Length: -1\r\n") == 400);
  CHECK(status("Content-Length: 1 2\r\n") == 400);
  CHECK(status("Content-Length: 2\r\nContent-Encoding: gzip\r\n") == 415);
  CHECK(status("Content-Length: 2\r\nContent-Encoding: br\r\n") == 415);
  CHECK(status("Content-Length: 2\r\nContent-Encoding: identity\r\n") == 0);
  CHECK(status("x-a: a\rb\r\n") == 400);
  CHECK(status("x-a: a\nAuthorization: Bearer t\r\n") == 400);
  CHECK(status(std::string("x-a: a\0b\r\n", 10)) == 400);
  CHECK(status("x-a: a\r\n b\r\n") == 400);
  CHECK(status("Authorization : Bearer t\r\n") == 400);
  CHECK(status("no colon here\r\n") == 400);
  CHECK(!check_request_head("GET / HTTP/1.1\nHost: x\n\n", limits).has_value());
  CHECK(!check_request_head("\r\n\r\n", limits).has_value());
  CHECK(!check_request_head("FOO / HTTP/1.1\r\n\r\n", limits).has_value());
  CHECK(!check_request_head("GET / HTTP/2.0\r\n\r\n", limits).has_value());
  CHECK(!check_request_head("GET  / HTTP/1.1\r\n\r\n", limits).has_value());
  CHECK(!check_request_head(std::string("GET /\0 HTTP/1.1\r\n\r\n", 19), limits).has_value());
  CHECK(check_request_head("GET http://example.com/x HTTP/1.0\r\n\r\n", limits).has_value());
  const auto cl_te = check_request_head(
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", limits);
  REQUIRE(!cl_te.has_value());
  CHECK(cl_te.error().type == "invalid_request_error");
}

TEST_CASE("check_request_head refuses heads over its limits with 414 and 431") {
  const HeadLimits limits{100, 1000, 5};
  const auto check = [&](const std::string& head) {
    const auto checked = check_request_head(head, limits);
    return checked ? 0 : checked.error().status;
  };
  CHECK(check("GET /" + std::string(120, 'a') + " HTTP/1.1\r\n\r\n") == 414);
  CHECK(check("GET / HTTP/1.1\r\nx-big: " + std::string(120, 'a') + "\r\n\r\n") == 431);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 6; ++i) {
    many += "x-" + std::to_string(i) + ": v\r\n";
  }
  CHECK(check(many + "\r\n") == 431);
  CHECK(check("GET / HTTP/1.1\r\nx-1: v\r\n\r\n") == 0);
}

TEST_CASE("check_partial_head refuses a head still arriving once it cannot pass, with the same messages") {
  const HeadLimits limits{100, 1000, 5};
  const auto status = [&](const std::string& partial) {
    const auto refused = check_partial_head(partial, limits);
    return refused ? refused->status : 0;
  };
  CHECK(status("GET /" + std::string(60, 'a')) == 0);                    // may still end in time
  CHECK(status("GET /" + std::string(120, 'a')) == 414);                 // no line end yet, already too long
  CHECK(status("GET / HTTP/1.1\r\nx-a: " + std::string(120, 'a')) == 0); // a field: left to the whole head
  CHECK(status("GET / HTTP/1.1\r\nx-a: " + std::string(1200, 'a')) == 431);
  const auto whole =
      check_request_head("GET / HTTP/1.1\r\nx-a: " + std::string(1200, 'a') + "\r\n\r\n", limits);
  REQUIRE(!whole.has_value());
  CHECK(check_partial_head("GET / HTTP/1.1\r\nx-a: " + std::string(1200, 'a'), limits)->message
        == whole.error().message);
}

TEST_CASE("write_rejection fills Anthropic's envelope and the retry headers") {
  Response res;
  write_rejection(res, Rejection(429, "rate_limit_error", "daily quota used", 3600, false), "req_x");
  CHECK(res.status == 429);
  CHECK(res.header("retry-after") == "3600");
  CHECK(res.header("x-should-retry") == "false");
  CHECK(res.header("request-id") == "req_x");
  CHECK(res.body.find(R"("type":"rate_limit_error")") != std::string::npos);
  CHECK(res.body.find("daily quota used") != std::string::npos);
  CHECK(!res.has_header("WWW-Authenticate"));

  Response unauthorized;
  write_rejection(unauthorized, Rejection(401, "authentication_error", "expired"), "req_y");
  CHECK(unauthorized.header("WWW-Authenticate") == "Bearer error=\"invalid_token\"");
  CHECK(unauthorized.header("x-should-retry") == "false");
  CHECK(!unauthorized.has_header("retry-after"));

  Response forbidden;
  write_rejection(forbidden, Rejection(403, "permission_error", "model not allowed"), "req_z");
  CHECK(forbidden.header("x-should-retry") == "false");

  Response busy;
  write_rejection(busy, Rejection(429, "rate_limit_error", "rpm", 2, true), "req_w");
  CHECK(!busy.has_header("x-should-retry"));
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
  CHECK(error_type_for(405) == "invalid_request_error");
  CHECK(error_type_for(408) == "timeout_error");
  CHECK(error_type_for(414) == "request_too_large");
  CHECK(error_type_for(431) == "request_too_large");
  CHECK(error_type_for(503) == "api_error");
}

TEST_CASE("check_target_path refuses paths the router and the upstream could read differently") {
  for (const char* good : {"/v1/messages", "/v1/messages?beta=true", "/v1/models/claude-3.5%20x",
                           "/v1/messages?a=%2F/../x", "/", "http://example.com//x", "*"}) {
    CAPTURE(good);
    CHECK(!check_target_path(good));
  }
  for (const char* bad :
       {"/v1/messages%2Fcount_tokens", "/v1/messages%2fcount_tokens", "/v1/messages%5Ccount_tokens",
        "/v1/messages\\count_tokens", "/v1//messages", "/v1/./messages", "/v1/x/../messages",
        "/v1/messages/.", "/v1/messages/..", "/v1/%2e%2e/messages", "/v1/%2E/messages", "/v1/m%65ssages",
        "/v1/messages%", "/v1/messages%zz", "/v1/messages%00", "/v1/messages#frag"}) {
    CAPTURE(bad);
    CHECK(check_target_path(bad));
  }
  CHECK(check_target_path("/v1/messages%2Fcount_tokens")->find("not canonical") != std::string::npos);
}

TEST_CASE("check_request_head refuses a non-canonical target with 400 and drops Range") {
  const HeadLimits limits;
  const auto encoded =
      check_request_head("POST /v1/messages%2Fcount_tokens HTTP/1.1\r\nContent-Length: 2\r\n\r\n", limits);
  REQUIRE(!encoded.has_value());
  CHECK(encoded.error().status == 400);
  CHECK(encoded.error().type == "invalid_request_error");
  CHECK(check_request_head("GET /v1/models HTTP/1.1\r\nRange: bytes=0-3\r\nHost: x\r\n\r\n", limits)
        == "GET /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("body_framing reads Content-Length or chunked from a checked head") {
  CHECK(body_framing("POST / HTTP/1.1\r\ncontent-length: 42\r\n\r\n").length == 42);
  CHECK(!body_framing("POST / HTTP/1.1\r\ncontent-length: 42\r\n\r\n").chunked);
  CHECK(body_framing("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").chunked);
}
