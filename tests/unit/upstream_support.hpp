// SPDX-License-Identifier: Apache-2.0
// A scripted local HTTP/1.1 server and a recording sink for the upstream
// client's tests; everything runs on one io_context in the test's thread.
#pragma once

#include "proxy/upstream.hpp"
#include "scratch_dir.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace claudegate::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto k_tuple = asio::as_tuple(asio::use_awaitable);

// Accepts on 127.0.0.1 and runs `serve` for each connection.
class LocalServer {
public:
  using Serve = std::function<asio::awaitable<void>(tcp::socket)>;

  LocalServer(asio::io_context& io, Serve serve)
      : m_acceptor(io, {asio::ip::address_v4::loopback(), 0}), m_serve(std::move(serve)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  unsigned short port() const { return m_acceptor.local_endpoint().port(); }
  std::string url(const std::string& host = "127.0.0.1", const std::string& scheme = "http") const {
    return scheme + "://" + host + ":" + std::to_string(port());
  }
  int connections = 0;

private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await m_acceptor.async_accept(k_tuple);
      if (ec) {
        co_return;
      }
      ++connections;
      asio::co_spawn(m_acceptor.get_executor(), m_serve(std::move(socket)), asio::detached);
    }
  }

  tcp::acceptor m_acceptor;
  Serve m_serve;
};

// One request read from `stream` (head and Content-Length body); nullopt at EOF.
template <typename Stream>
asio::awaitable<std::optional<std::string>> read_request(Stream& stream, std::string& buffer) {
  auto [ec, head_end] =
      co_await asio::async_read_until(stream, asio::dynamic_buffer(buffer), "\r\n\r\n", k_tuple);
  if (ec) {
    co_return std::nullopt;
  }
  std::size_t length = 0;
  if (const auto at = buffer.find("Content-Length: "); at != std::string::npos && at < head_end) {
    length = std::stoul(buffer.substr(at + 16));
  }
  if (buffer.size() < head_end + length) {
    auto [read_ec, n] =
        co_await asio::async_read(stream, asio::dynamic_buffer(buffer),
                                  asio::transfer_exactly(head_end + length - buffer.size()), k_tuple);
    if (read_ec) {
      co_return std::nullopt;
    }
  }
  std::string request = buffer.substr(0, head_end + length);
  buffer.erase(0, head_end + length);
  co_return request;
}

// `bytes` by value: kept in the coroutine's frame.
template <typename Stream> asio::awaitable<bool> send(Stream& stream, std::string bytes) {
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(bytes), k_tuple);
  co_return !ec;
}

inline asio::awaitable<void> pause(std::chrono::milliseconds delay) {
  asio::steady_timer timer(co_await asio::this_coro::executor, delay);
  co_await timer.async_wait(k_tuple);
}

// Keeps what the exchange delivered; `on_data` runs inside data() (to pause it).
class RecordingSink final : public proxy::UpstreamSink {
public:
  asio::awaitable<bool> head(const proxy::UpstreamHead& head) override {
    received = head;
    co_return true;
  }
  asio::awaitable<bool> data(std::string_view chunk) override {
    chunks.emplace_back(chunk);
    if (on_data) {
      co_await on_data(chunk);
    }
    co_return accept;
  }
  std::string body() const {
    std::string all;
    for (const auto& chunk : chunks) {
      all += chunk;
    }
    return all;
  }

  proxy::UpstreamHead received;
  std::vector<std::string> chunks;
  bool accept = true;
  std::function<asio::awaitable<void>(std::string_view)> on_data;
};

// Run `io` until `done()` (the servers keep it busy forever otherwise).
inline void run_until(asio::io_context& io, const std::function<bool()>& done) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done() && std::chrono::steady_clock::now() < give_up) {
    if (io.stopped()) {
      io.restart(); // it ran out of work before `done` was spawned
    }
    io.run_one_for(std::chrono::milliseconds(100));
  }
}

// `exchange` run to its end on `io`.
inline proxy::Exchange run_exchange(asio::io_context& io, asio::awaitable<proxy::Exchange> exchange) {
  std::optional<proxy::Exchange> result;
  asio::co_spawn(io, std::move(exchange), [&result](std::exception_ptr error, proxy::Exchange done) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        result = proxy::Exchange{proxy::UpstreamFailure::connect, std::string("exception: ") + e.what()};
      }
      return;
    }
    result = std::move(done);
  });
  run_until(io, [&result] { return result.has_value(); });
  return result.value_or(proxy::Exchange{proxy::UpstreamFailure::connect, "did not finish"});
}

// A self-signed certificate for DNS name localhost (and no IP address), made with the openssl tool.
struct LocalhostCertificate {
  ScratchDir dir;
  std::string cert = (dir.path() / "cert.pem").string();
  std::string key = (dir.path() / "key.pem").string();
  bool made = std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                           "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout "
                           + key + " -out " + cert + " 2>/dev/null")
                              .c_str())
              == 0;
};

} // namespace claudegate::test
