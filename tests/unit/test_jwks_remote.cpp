// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/jwks_remote.hpp"

#include "claudegate/jose/jwks.hpp"

#include "scratch_dir.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace claudegate;
using namespace claudegate::jwks_remote;

namespace {

keys::Key generated() {
  auto key = keys::Key::generate(keys::Alg::ES256);
  REQUIRE(key);
  return std::move(*key);
}

std::string document_of(const keys::Key& key) {
  return jwks::to_document({&key}).dump();
}

std::string http_response(int status, const std::string& body, const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body;
}

// A one-thread HTTP server on 127.0.0.1 (free port) answering each request
// with `reply()` and counting requests; an empty reply holds the connection
// open without answering (a hanging IdP).
class TinyServer {
public:
  explicit TinyServer(std::function<std::string()> reply) : m_reply(std::move(reply)) {
    m_socket = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    REQUIRE(::bind(m_socket, reinterpret_cast<sockaddr*>(&addr), length) == 0);
    REQUIRE(::listen(m_socket, 8) == 0);
    REQUIRE(::getsockname(m_socket, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { serve(); });
  }
  ~TinyServer() {
    m_stop = true;
    m_thread.join();
    ::close(m_socket);
  }
  TinyServer(const TinyServer&) = delete;
  TinyServer& operator=(const TinyServer&) = delete;

  std::string url(const std::string& path = "/jwks.json") const {
    return "http://127.0.0.1:" + std::to_string(m_port) + path;
  }
  int requests() const { return m_requests; }

private:
  bool readable(int fd) const {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 50) > 0;
  }

  void serve() {
    while (!m_stop) {
      if (!readable(m_socket)) {
        continue;
      }
      const int client = ::accept(m_socket, nullptr, nullptr);
      if (client >= 0) {
        answer(client);
        ::close(client);
      }
    }
  }

  void answer(int client) {
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos && !m_stop) {
      if (!readable(client)) {
        continue;
      }
      const ssize_t got = ::recv(client, buffer, sizeof(buffer), 0);
      if (got <= 0) {
        return;
      }
      request.append(buffer, static_cast<std::size_t>(got));
    }
    ++m_requests;
    const std::string reply = m_reply();
    while (reply.empty() && !m_stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    (void)::send(client, reply.data(), reply.size(), MSG_NOSIGNAL);
  }

  std::function<std::string()> m_reply;
  int m_socket = -1;
  int m_port = 0;
  std::atomic<bool> m_stop{false};
  std::atomic<int> m_requests{0};
  std::thread m_thread;
};

// A fetcher that serves `document` (or fails with `failure`) and counts calls.
struct FakeIdp {
  explicit FakeIdp(std::string text) : document(std::move(text)) {}

  std::string document;
  std::optional<Error> failure;
  std::int64_t max_age = 600;
  int fetches = 0;

  Fetcher fetcher() {
    return [this](const std::string&) -> Result<Document> {
      ++fetches;
      if (failure) {
        return std::unexpected(*failure);
      }
      return Document{document, max_age};
    };
  }
};

constexpr const char* k_url = "https://idp.example/.well-known/jwks.json";

std::unique_ptr<RemoteKeySet> open_set(FakeIdp& idp, const Clock& clock, const DiskCache* disk = nullptr) {
  auto set = RemoteKeySet::open(k_url, clock, {}, idp.fetcher(), disk);
  REQUIRE(set);
  return std::move(*set);
}

bool has_kid(const Result<std::shared_ptr<const keyset::KeySet>>& keys, const std::string& kid) {
  REQUIRE(keys);
  return (*keys)->find(kid) != nullptr;
}

} // namespace

TEST_CASE("jwks_remote: check_url allows https and loopback http only") {
  CHECK(check_url("https://tenant.auth0.com/.well-known/jwks.json"));
  CHECK(check_url("http://127.0.0.1:8080/jwks.json"));
  CHECK(check_url("http://localhost/jwks"));
  CHECK(check_url("http://[::1]:9000/jwks"));
  for (const char* bad : {"http://idp.example/jwks.json", "http://10.0.0.1/jwks", "ftp://idp.example/jwks",
                          "https://", "https:///jwks", "https://user:pw@idp.example/jwks", "idp.example/jwks",
                          "http://127.0.0.1.evil.example/jwks"}) {
    CAPTURE(bad);
    auto checked = check_url(bad);
    REQUIRE_FALSE(checked);
    CHECK(checked.error().code == Errc::config);
  }
  CHECK(check_url("http://idp.example/jwks").error().message.find("use https://") != std::string::npos);
}

TEST_CASE("jwks_remote: max_age_of honours Cache-Control within bounds") {
  const Limits limits;
  CHECK(max_age_of("", limits) == 600);
  CHECK(max_age_of("max-age=120", limits) == 120);
  CHECK(max_age_of("public, Max-Age=3600, must-revalidate", limits) == 3600);
  CHECK(max_age_of("max-age=5", limits) == 30);
  CHECK(max_age_of("max-age=99999999", limits) == 24 * 3600);
  CHECK(max_age_of("max-age=99999999999999999999999", limits) == 24 * 3600);
  CHECK(max_age_of("no-store", limits) == 30);
  CHECK(max_age_of("max-age=abc", limits) == 600);
  CHECK(max_age_of("max-age=-5", limits) == 30);
}

TEST_CASE("jwks_remote: fetch reads the body and its max-age over loopback http") {
  const keys::Key key = generated();
  TinyServer server([&] { return http_response(200, document_of(key), "Cache-Control: max-age=300\r\n"); });
  auto document = fetch(server.url(), {});
  REQUIRE(document);
  CHECK(document->text == document_of(key));
  CHECK(document->max_age == 300);
  CHECK(server.requests() == 1);
}

TEST_CASE("jwks_remote: fetch fails with io naming the URL on non-200, redirects and oversize bodies") {
  TinyServer missing([] { return http_response(404, "{}"); });
  auto not_found = fetch(missing.url(), {});
  REQUIRE_FALSE(not_found);
  CHECK(not_found.error().code == Errc::io);
  CHECK(not_found.error().message.find("HTTP 404") != std::string::npos);
  CHECK(not_found.error().message.find(missing.url()) != std::string::npos);

  TinyServer moved([] { return http_response(302, "", "Location: https://elsewhere.example/jwks\r\n"); });
  auto redirected = fetch(moved.url(), {});
  REQUIRE_FALSE(redirected);
  CHECK(redirected.error().message.find("https://elsewhere.example/jwks") != std::string::npos);

  TinyServer big([] { return http_response(200, std::string(5000, ' ') + "{}"); });
  Limits small;
  small.max_bytes = 1000;
  auto oversize = fetch(big.url(), small);
  REQUIRE_FALSE(oversize);
  CHECK(oversize.error().code == Errc::io);
  CHECK(oversize.error().message.find("larger than 1000 bytes") != std::string::npos);
}

TEST_CASE("jwks_remote: fetch gives up on a silent server after the timeout") {
  TinyServer hanging([] { return std::string{}; });
  Limits limits;
  limits.timeout = 1;
  const auto started = std::chrono::steady_clock::now();
  auto document = fetch(hanging.url(), limits);
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(document);
  CHECK(document.error().code == Errc::io);
  CHECK(document.error().message.find("timed out") != std::string::npos);
  CHECK(took < std::chrono::seconds(4));
}

TEST_CASE("jwks_remote: fetch reports a refused connection and refuses remote plain http") {
  std::string url;
  {
    TinyServer gone([] { return std::string{}; });
    url = gone.url();
  }
  auto refused = fetch(url, {});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::io);
  CHECK(refused.error().message.find("cannot fetch JWKS from " + url) != std::string::npos);
  auto plain = fetch("http://idp.example/jwks.json", {});
  REQUIRE_FALSE(plain);
  CHECK(plain.error().code == Errc::config);
}

TEST_CASE("jwks_remote: keys are cached for max-age, then refetched") {
  const keys::Key key = generated();
  FakeIdp idp(document_of(key));
  FixedClock clock(1'000'000);
  auto set = open_set(idp, clock);
  CHECK(idp.fetches == 0); // open fetches nothing
  CHECK(has_kid(set->keys_for(key.kid()), key.kid()));
  CHECK(has_kid(set->keys_for(key.kid()), key.kid()));
  clock.set(1'000'000 + 599);
  CHECK(has_kid(set->keys_for(key.kid()), key.kid()));
  CHECK(idp.fetches == 1);
  clock.set(1'000'000 + 600);
  CHECK(has_kid(set->keys_for(key.kid()), key.kid()));
  CHECK(idp.fetches == 2);
}

// serve-local --jwks relies on this rule (tests/proxy/t_jwks_url.sh checks only the first 30 s).
TEST_CASE("jwks_remote: an unknown kid refetches at most every 30 s (key rotation)") {
  const keys::Key first = generated();
  const keys::Key second = generated();
  const keys::Key third = generated();
  FakeIdp idp(document_of(first));
  FixedClock clock(1'000'000);
  auto set = open_set(idp, clock);
  REQUIRE(set->keys_for(first.kid()));
  clock.set(1'000'000 + 30);
  idp.document = document_of(second); // the IdP rotated
  CHECK(has_kid(set->keys_for(second.kid()), second.kid()));
  CHECK(idp.fetches == 2);
  CHECK_FALSE(has_kid(set->keys_for(first.kid()), first.kid())); // the old key is gone with the refetch
  CHECK(idp.fetches == 2);
  clock.set(1'000'000 + 59);
  idp.document = document_of(third);
  CHECK_FALSE(has_kid(set->keys_for(third.kid()), third.kid())); // throttled
  CHECK_FALSE(has_kid(set->keys_for("no-such-kid"), "no-such-kid"));
  CHECK(set->keys_for("").has_value()); // no kid: never a refetch
  CHECK(idp.fetches == 2);
  clock.set(1'000'000 + 60);
  CHECK(has_kid(set->keys_for(third.kid()), third.kid()));
  CHECK(idp.fetches == 3);
}

TEST_CASE("jwks_remote: a failed refetch keeps the previous keys until max_stale") {
  const keys::Key key = generated();
  FakeIdp idp(document_of(key));
  FixedClock clock(1'000'000);
  auto set = open_set(idp, clock);
  REQUIRE(set->keys_for(key.kid()));
  idp.failure = Error{Errc::io, "cannot fetch JWKS from the IdP"};
  clock.set(1'000'000 + 700); // stale: refetch fails, old keys stay
  CHECK(has_kid(set->keys_for(key.kid()), key.kid()));
  CHECK(idp.fetches == 2);
  clock.set(1'000'000 + 24 * 3600);
  auto expired = set->keys_for(key.kid());
  REQUIRE_FALSE(expired);
  CHECK(expired.error().message == "cannot fetch JWKS from the IdP");
  idp.failure.reset();
  clock.set(1'000'000 + 24 * 3600 + 30);
  CHECK(has_kid(set->keys_for(key.kid()), key.kid()));
}

TEST_CASE("jwks_remote: no keys and a failing or bad document fail with io") {
  FakeIdp idp("{\"keys\": 5}");
  FixedClock clock(1'000'000);
  auto set = open_set(idp, clock);
  auto bad = set->keys_for("kid");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == Errc::io);
  CHECK(bad.error().message.find(k_url) != std::string::npos);
  CHECK(bad.error().message.find("not a usable key set") != std::string::npos);
  REQUIRE_FALSE(set->keys_for("kid")); // within 30 s: the same error, no new fetch
  CHECK(idp.fetches == 1);
  idp.document = "not json";
  clock.set(1'000'000 + 30);
  REQUIRE_FALSE(set->keys_for("kid"));
  CHECK(idp.fetches == 2);
}

TEST_CASE("jwks_remote: the disk cache carries documents and the throttle across processes") {
  test::ScratchDir scratch;
  const DiskCache disk(scratch.path() / "cache" / "jwks");
  const keys::Key key = generated();
  FakeIdp idp(document_of(key));
  FixedClock clock(1'000'000);
  REQUIRE(open_set(idp, clock, &disk)->keys_for(key.kid()));
  CHECK(test::mode_of(disk.path_for(k_url)) == 0600);
  CHECK(test::mode_of(scratch.path() / "cache" / "jwks") == 0700);
  CHECK(disk.path_for(k_url) != disk.path_for("https://other.example/jwks.json"));

  clock.set(1'000'000 + 10); // a second run: fresh cache, and an unknown kid is throttled
  auto again = open_set(idp, clock, &disk);
  CHECK(has_kid(again->keys_for(key.kid()), key.kid()));
  CHECK_FALSE(has_kid(again->keys_for("unknown"), "unknown"));
  CHECK(idp.fetches == 1);

  clock.set(1'000'000 + 40); // a third run after 30 s may refetch for the unknown kid
  CHECK_FALSE(has_kid(open_set(idp, clock, &disk)->keys_for("unknown"), "unknown"));
  CHECK(idp.fetches == 2);
  auto saved = disk.load(k_url);
  REQUIRE(saved);
  CHECK(saved->fetched_at == 1'000'000 + 40);
  CHECK(saved->document.text == document_of(key));
  CHECK_FALSE(disk.load("https://other.example/jwks.json"));
}

TEST_CASE("jwks_remote: a disk entry for another URL or a broken one is a miss") {
  test::ScratchDir scratch;
  const DiskCache disk(scratch.path());
  const keys::Key key = generated();
  REQUIRE(disk.save("https://other.example/jwks", {{document_of(key), 600}, 1'000'000}));
  std::filesystem::rename(disk.path_for("https://other.example/jwks"), disk.path_for(k_url));
  CHECK_FALSE(disk.load(k_url));
  FakeIdp idp(document_of(key));
  FixedClock clock(1'000'000);
  REQUIRE(open_set(idp, clock, &disk)->keys_for(key.kid()));
  CHECK(idp.fetches == 1);
  REQUIRE(disk.load(k_url));
  std::filesystem::resize_file(disk.path_for(k_url), 10);
  CHECK_FALSE(disk.load(k_url));
}
