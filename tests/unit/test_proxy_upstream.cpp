// SPDX-License-Identifier: Apache-2.0
#include "proxy/upstream_http.hpp"
#include "upstream_support.hpp"

#include "claudegate/base/tls_client.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <doctest/doctest.h>

using namespace claudegate;
using namespace claudegate::proxy;
using namespace claudegate::test;
using namespace std::chrono_literals;

namespace {

const std::string k_ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

std::unique_ptr<Upstream> upstream_at(const std::string& url, std::int64_t read_timeout = 10,
                                      std::shared_ptr<asio::ssl::context> tls = nullptr) {
  auto upstream = http_upstream(UpstreamSettings{url, "sk-server", 2, read_timeout}, std::move(tls));
  REQUIRE(upstream);
  return std::move(*upstream);
}

Outbound post(const std::string& target, std::string body = "{\"a\":1}") {
  Outbound out;
  out.target = target;
  out.headers.set("content-type", "application/json");
  out.body = std::move(body);
  return out;
}

// Answers every request on a connection with `reply`, keeping the requests.
LocalServer::Serve answering(std::string reply, std::vector<std::string>& requests) {
  return [reply, &requests](tcp::socket socket) -> asio::awaitable<void> {
    std::string buffer;
    while (auto request = co_await read_request(socket, buffer)) {
      requests.push_back(*request);
      if (!co_await send(socket, reply)) {
        co_return;
      }
    }
  };
}

} // namespace

TEST_CASE("upstream: one keep-alive connection serves two exchanges, the request as specified") {
  asio::io_context io;
  std::vector<std::string> requests;
  LocalServer server(io, answering(k_ok, requests));
  auto upstream = upstream_at(server.url() + "/base/");
  for (int i = 0; i < 2; ++i) {
    RecordingSink sink;
    const Exchange done = run_exchange(io, upstream->exchange(post("/v1/messages?beta=true&x=%2F.."), sink));
    CHECK(done.failure == UpstreamFailure::none);
    CHECK(sink.received.status == 200);
    CHECK(sink.body() == "{}");
  }
  CHECK(server.connections == 1);
  REQUIRE(requests.size() == 2);
  const std::string& request = requests[0];
  CHECK(request.starts_with("POST /base/v1/messages?beta=true&x=%2F.. HTTP/1.1\r\n"));
  for (const char* line : {"x-api-key: sk-server\r\n", "Accept-Encoding: identity\r\n",
                           "Content-Length: 7\r\n", "content-type: application/json\r\n"}) {
    CAPTURE(line);
    CHECK(request.find(line) != std::string::npos);
  }
  CHECK(request.find("Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n") != std::string::npos);
  CHECK(request.ends_with("\r\n\r\n{\"a\":1}"));
}

TEST_CASE("upstream: a chunked reply is delivered chunk by chunk as it arrives, Content-Encoding kept") {
  asio::io_context io;
  RecordingSink sink;
  LocalServer server(io, [&sink](tcp::socket socket) -> asio::awaitable<void> {
    std::string buffer;
    co_await read_request(socket, buffer);
    co_await send(socket, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n");
    while (sink.chunks.empty()) { // the second chunk only once the first was delivered
      co_await pause(5ms);
    }
    co_await send(socket, "6\r\n world\r\n0\r\n\r\n");
  });
  auto upstream = upstream_at(server.url());
  const Exchange done = run_exchange(io, upstream->exchange(post("/v1/messages"), sink));
  CHECK(done.failure == UpstreamFailure::none);
  CHECK(sink.chunks == std::vector<std::string>{"hello", " world"});
  CHECK(sink.received.headers["Content-Encoding"] == "gzip"); // relayed as is, never decoded
}

TEST_CASE("upstream: the next read waits for data() (backpressure), memory bounded") {
  asio::io_context io;
  const std::size_t size = 32 * 1024 * 1024;
  bool server_wrote_all = false;
  LocalServer server(io, [&](tcp::socket socket) -> asio::awaitable<void> {
    std::string buffer;
    co_await read_request(socket, buffer);
    server_wrote_all = co_await send(socket, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size)
                                                 + "\r\n\r\n" + std::string(size, 'x'));
  });
  RecordingSink sink;
  bool wrote_all_while_paused = true;
  std::size_t largest = 0;
  std::size_t total = 0;
  sink.on_data = [&](std::string_view chunk) -> asio::awaitable<void> {
    largest = std::max(largest, chunk.size());
    total += chunk.size();
    if (total == chunk.size()) {
      co_await pause(300ms); // the client reads nothing meanwhile: the server's write stalls
      wrote_all_while_paused = server_wrote_all;
    }
  };
  auto upstream = upstream_at(server.url());
  const Exchange done = run_exchange(io, upstream->exchange(post("/v1/messages"), sink));
  CHECK_MESSAGE(done.failure == UpstreamFailure::none, done.message);
  CHECK_FALSE(wrote_all_while_paused);
  CHECK(total == size);
  CHECK(largest <= 16 * 1024);
  sink.chunks.clear();
}

TEST_CASE("upstream: nothing listening is a connect failure naming the upstream") {
  asio::io_context io;
  RecordingSink sink;
  auto upstream = upstream_at("http://127.0.0.1:1");
  const Exchange done = run_exchange(io, upstream->exchange(post("/v1/messages"), sink));
  CHECK(done.failure == UpstreamFailure::connect);
  CHECK(done.message == "cannot connect to upstream 127.0.0.1:1 (Connection refused)");
}

TEST_CASE("upstream: a silent upstream is a timeout after the read timeout") {
  asio::io_context io;
  LocalServer server(io, [](tcp::socket socket) -> asio::awaitable<void> {
    std::string buffer;
    co_await read_request(socket, buffer);
    co_await read_request(socket, buffer); // never answers; returns when the client closes
  });
  RecordingSink sink;
  auto upstream = upstream_at(server.url(), 1);
  const auto started = std::chrono::steady_clock::now();
  const Exchange done = run_exchange(io, upstream->exchange(post("/v1/messages"), sink));
  CHECK(done.failure == UpstreamFailure::timeout);
  CHECK(done.message == "upstream did not answer in time (read timeout 1 s)");
  CHECK(std::chrono::steady_clock::now() - started < 5s);
}

TEST_CASE("upstream: cancellation through || closes the connection at once, never pooled") {
  using namespace asio::experimental::awaitable_operators;
  asio::io_context io;
  bool saw_eof = false;
  LocalServer server(io, [&saw_eof](tcp::socket socket) -> asio::awaitable<void> {
    std::string buffer;
    if (!co_await read_request(socket, buffer)) {
      co_return;
    }
    co_await send(socket, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n");
    saw_eof = !co_await read_request(socket, buffer); // the client's close, not a request
  });
  auto upstream = upstream_at(server.url());
  RecordingSink sink;
  auto race = [&]() -> asio::awaitable<bool> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 300ms);
    const Outbound out = post("/v1/messages");
    auto winner = co_await (upstream->exchange(out, sink) || timer.async_wait(asio::use_awaitable));
    co_return winner.index() == 1;
  };
  std::optional<bool> timer_won;
  asio::co_spawn(io, race(), [&](std::exception_ptr, bool won) { timer_won = won; });
  run_until(io, [&] { return timer_won.has_value() && saw_eof; });
  CHECK(timer_won == true);
  CHECK(sink.chunks == std::vector<std::string>{"first"});
  CHECK(saw_eof);
}

TEST_CASE("upstream: a sink that refuses data cancels; the connection is not reused") {
  asio::io_context io;
  std::vector<std::string> requests;
  LocalServer server(io, answering(k_ok, requests));
  auto upstream = upstream_at(server.url());
  RecordingSink refusing;
  refusing.accept = false;
  CHECK(run_exchange(io, upstream->exchange(post("/v1/messages"), refusing)).failure
        == UpstreamFailure::canceled);
  RecordingSink sink;
  CHECK(run_exchange(io, upstream->exchange(post("/v1/messages"), sink)).failure == UpstreamFailure::none);
  CHECK(server.connections == 2);
}

TEST_CASE("upstream: a pooled connection the server closed while idle is retried once on a fresh one") {
  asio::io_context io;
  int closed = 0;
  std::vector<std::string> requests;
  LocalServer server(io, [&](tcp::socket socket) -> asio::awaitable<void> {
    std::string buffer;
    if (auto request = co_await read_request(socket, buffer)) {
      requests.push_back(*request);
      co_await send(socket, k_ok); // says keep-alive, then closes: an idle timeout
    }
    socket.close();
    ++closed;
  });
  auto upstream = upstream_at(server.url());
  RecordingSink first;
  CHECK(run_exchange(io, upstream->exchange(post("/v1/messages"), first)).failure == UpstreamFailure::none);
  run_until(io, [&] { return closed == 1; });
  RecordingSink second;
  const Exchange done = run_exchange(io, upstream->exchange(post("/v1/messages"), second));
  CHECK(done.failure == UpstreamFailure::none);
  CHECK(second.body() == "{}");
  CHECK(server.connections == 2);
  CHECK(requests.size() == 2);
}

TEST_CASE("upstream: the mock answers JSON and streams SSE events one chunk each") {
  asio::io_context io;
  SystemRandom random;
  auto mock = mock_upstream(random);
  RecordingSink json;
  auto message =
      post("/v1/messages",
           R"({"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]})");
  CHECK(run_exchange(io, mock->exchange(message, json)).failure == UpstreamFailure::none);
  CHECK(json.received.status == 200);
  CHECK(json.received.headers["content-type"] == "application/json");
  CHECK(json.body().find("\"usage\"") != std::string::npos);
  message.stream = true;
  RecordingSink events;
  const Exchange streamed = run_exchange(io, mock->exchange(message, events));
  CHECK_MESSAGE(streamed.failure == UpstreamFailure::none, streamed.message);
  CHECK(events.received.headers["content-type"] == "text/event-stream; charset=utf-8");
  REQUIRE(events.chunks.size() > 2);
  CHECK(events.chunks.front().starts_with("event: message_start"));
  CHECK(events.chunks.back().starts_with("event: message_stop"));
  RecordingSink models;
  CHECK(run_exchange(io, mock->exchange(post("/v1/models/nope"), models)).failure == UpstreamFailure::none);
  CHECK(models.received.status == 404);
}

namespace {

// Serves k_ok over TLS with `certificate`, keeping the SNI name the client sent.
LocalServer::Serve tls_answering(asio::ssl::context& context, std::string& sni) {
  return [&context, &sni](tcp::socket socket) -> asio::awaitable<void> {
    asio::ssl::stream<tcp::socket> stream(std::move(socket), context);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, k_tuple);
    if (ec) {
      co_return;
    }
    const char* name = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
    sni = name != nullptr ? name : "";
    std::string buffer;
    if (co_await read_request(stream, buffer)) {
      co_await send(stream, k_ok);
    }
  };
}

} // namespace

TEST_CASE("upstream: TLS with SNI and the peer's name verified; an untrusted or misnamed certificate fails") {
  const LocalhostCertificate certificate;
  REQUIRE(certificate.made);
  asio::ssl::context server_context(asio::ssl::context::tls_server);
  server_context.use_certificate_chain_file(certificate.cert);
  server_context.use_private_key_file(certificate.key, asio::ssl::context::pem);
  asio::io_context io;
  std::string sni;
  LocalServer server(io, tls_answering(server_context, sni));
  auto trusting = tls::client_context(certificate.cert);
  REQUIRE(trusting);

  RecordingSink sink;
  auto verified = upstream_at(server.url("localhost", "https"), 10, *trusting);
  const Exchange done = run_exchange(io, verified->exchange(post("/v1/messages"), sink));
  CHECK_MESSAGE(done.failure == UpstreamFailure::none, done.message);
  CHECK(sink.body() == "{}");
  CHECK(sni == "localhost");

  // Trusted, but not issued for the address 127.0.0.1.
  auto misnamed = upstream_at(server.url("127.0.0.1", "https"), 10, *trusting);
  const Exchange wrong_name = run_exchange(io, misnamed->exchange(post("/v1/messages"), sink));
  CHECK(wrong_name.failure == UpstreamFailure::connect);
  CHECK(wrong_name.message.starts_with("TLS verification of upstream 127.0.0.1:"));
  CHECK(wrong_name.message.find("mismatch") != std::string::npos);

  // The system CAs do not know a self-signed certificate.
  auto untrusted = upstream_at(server.url("localhost", "https"));
  const Exchange unknown = run_exchange(io, untrusted->exchange(post("/v1/messages"), sink));
  CHECK(unknown.failure == UpstreamFailure::connect);
  CHECK(unknown.message.starts_with("TLS verification of upstream localhost:"));
  CHECK(unknown.message.find("self-signed certificate") != std::string::npos);
}
