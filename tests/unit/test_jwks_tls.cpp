// SPDX-License-Identifier: Apache-2.0
#include "upstream_support.hpp"

#include "claudegate/jose/jwks_remote.hpp"

#include <boost/asio/ssl/stream.hpp>
#include <doctest/doctest.h>

#include <thread>

using namespace claudegate;
using namespace claudegate::test;

TEST_CASE("jwks_remote: fetch over https refuses a certificate the system CAs do not trust, naming why") {
  const LocalhostCertificate certificate;
  REQUIRE(certificate.made);
  asio::ssl::context context(asio::ssl::context::tls_server);
  context.use_certificate_chain_file(certificate.cert);
  context.use_private_key_file(certificate.key, asio::ssl::context::pem);
  asio::io_context io;
  bool handshake_failed = false;
  LocalServer server(io, [&](tcp::socket socket) -> asio::awaitable<void> {
    asio::ssl::stream<tcp::socket> stream(std::move(socket), context);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, k_tuple);
    handshake_failed = static_cast<bool>(ec);
  });
  auto work = asio::make_work_guard(io);
  std::thread thread([&io] { io.run(); });
  const std::string url = server.url("localhost", "https") + "/jwks.json";
  auto document = jwks_remote::fetch(url, {});
  work.reset();
  io.stop();
  thread.join();
  REQUIRE_FALSE(document);
  CHECK(document.error().code == Errc::io);
  CHECK(document.error().message.find("cannot fetch JWKS from " + url) != std::string::npos);
  CHECK(document.error().message.find("did not verify against the system CA bundle: self-signed certificate")
        != std::string::npos);
  CHECK(handshake_failed);
}
