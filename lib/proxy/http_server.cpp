// SPDX-License-Identifier: Apache-2.0
#include "http_server.hpp"

#include "http_connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

namespace claudegate::proxy {

namespace {

using tcp = asio::ip::tcp;
using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;

bool is_loopback(const asio::ip::address& address) {
  return address.is_loopback()
         || (address.is_v6() && address.to_v6().is_v4_mapped()
             && asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback());
}

// Take a place for a connection from `peer`: false when it already holds `limit`.
bool admit_peer(HttpServer::Shared& shared, const asio::ip::address& peer, const std::string& text) {
  const std::lock_guard lock(shared.mutex);
  if (!is_loopback(peer)) {
    auto& count = shared.per_peer[text];
    if (count >= shared.limits.per_peer) {
      return false;
    }
    ++count;
  }
  ++shared.connections;
  return true;
}

// The live connections; those that ended are pruned.
std::vector<std::shared_ptr<HttpConnection>> open_connections(HttpServer::Shared& shared) {
  const std::lock_guard lock(shared.mutex);
  std::erase_if(shared.open, [](const std::weak_ptr<HttpConnection>& weak) { return weak.expired(); });
  std::vector<std::shared_ptr<HttpConnection>> live;
  for (const auto& weak : shared.open) {
    if (auto connection = weak.lock()) {
      live.push_back(std::move(connection));
    }
  }
  return live;
}

void remember(HttpServer::Shared& shared, const std::shared_ptr<HttpConnection>& connection) {
  const std::lock_guard lock(shared.mutex);
  if (shared.open.size() > 2 * shared.connections + 64) {
    std::erase_if(shared.open, [](const std::weak_ptr<HttpConnection>& weak) { return weak.expired(); });
  }
  shared.open.push_back(connection);
}

} // namespace

HttpServer::HttpServer(RequestHandler& handler, ServerLimits limits, std::size_t io_threads)
    : m_shared(std::make_unique<Shared>(handler, limits)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(io_threads, 1); ++i) {
    m_contexts.push_back(std::make_unique<asio::io_context>(1));
  }
}

HttpServer::~HttpServer() = default;

Result<int> HttpServer::bind(const std::string& host, int port) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  const tcp::endpoint endpoint(ec ? asio::ip::address_v4::loopback() : address,
                               static_cast<unsigned short>(port));
  if (!ec) {
    tcp::acceptor acceptor(*m_contexts.front());
    acceptor.open(endpoint.protocol(), ec);
    // SO_REUSEADDR alone: a quick restart works, yet a second server on a
    // port already served is an error (SO_REUSEPORT would let it share).
    if (!ec) {
      acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
      acceptor.bind(endpoint, ec);
    }
    if (!ec) {
      acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (!ec) {
      m_acceptor.emplace(std::move(acceptor));
      return m_acceptor->local_endpoint().port();
    }
  }
  return fail(Errc::io, fmt::format("cannot listen on {}:{} ({}); pick another with --listen HOST:PORT", host,
                                    port, ec ? ec.message() : "not an IP address"));
}

asio::awaitable<void> HttpServer::accept_loop() {
  std::size_t next = 0;
  for (;;) {
    auto& context = *m_contexts[next];
    next = (next + 1) % m_contexts.size();
    auto [ec, socket] = co_await m_acceptor->async_accept(context, asio::as_tuple(asio::use_awaitable));
    if (m_shared->stopping || !m_acceptor->is_open()) {
      break;
    }
    if (ec) {
      continue; // a connection that failed before it was accepted, or out of descriptors for a moment
    }
    boost::system::error_code peer_ec;
    const auto peer = socket.remote_endpoint(peer_ec);
    const std::string text = peer.address().to_string();
    if (peer_ec || !admit_peer(*m_shared, peer.address(), text)) {
      continue; // closed as it goes out of scope
    }
    socket.set_option(tcp::no_delay(true), peer_ec);
    auto connection = std::make_shared<HttpConnection>(std::move(socket), *m_shared, text, peer.port());
    remember(*m_shared, connection);
    asio::co_spawn(
        context, [connection]() { return connection->run(); }, asio::detached);
  }
}

void HttpServer::run() {
  std::vector<WorkGuard> guards;
  for (auto& context : m_contexts) {
    guards.emplace_back(context->get_executor());
  }
  std::mutex guards_mutex;
  m_shared->on_idle = [&guards, &guards_mutex] {
    const std::lock_guard lock(guards_mutex);
    for (auto& guard : guards) {
      guard.reset();
    }
  };
  asio::co_spawn(*m_contexts.front(), accept_loop(), asio::detached);
  m_running = true;
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < m_contexts.size(); ++i) {
    threads.emplace_back([&context = *m_contexts[i]] { context.run(); });
  }
  m_contexts.front()->run();
  for (auto& thread : threads) {
    thread.join();
  }
  m_running = false;
}

void HttpServer::stop_accepting() {
  if (m_shared->stopping.exchange(true)) {
    return;
  }
  asio::post(*m_contexts.front(), [this] {
    boost::system::error_code ignored;
    m_acceptor->close(ignored);
    if (m_shared->connections == 0) {
      m_shared->on_idle();
    }
  });
  for (auto& connection : open_connections(*m_shared)) {
    asio::post(connection->executor(), [connection] { connection->stop_if_idle(); });
  }
}

void HttpServer::cut_off() {
  m_shared->cut = true;
  for (auto& connection : open_connections(*m_shared)) {
    asio::post(connection->executor(), [connection] { connection->cut(); });
  }
}

} // namespace claudegate::proxy
