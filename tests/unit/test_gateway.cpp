// SPDX-License-Identifier: Apache-2.0
// The gateway's Messages handler with every dependency injected through
// GatewayParts: a real SQLite store and a keyring in a scratch folder, the
// mock Claude upstream, and a FixedClock (expiry and quota days without
// sleeps). Each case calls Gateway::messages, runs its forward on an
// io_context into a writer that keeps the reply, and checks the status,
// the headers, the ledger and the request log.
#include "proxy/gateway.hpp"

#include "claudegate/jose/jwks.hpp"

#include "jose_support.hpp"
#include "scratch_dir.hpp"

#include "claudegate/store/sqlite.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

using namespace claudegate;
using namespace claudegate::keys;
using namespace claudegate::keyring;
using namespace claudegate::keyset;
using namespace claudegate::proxy;
using namespace claudegate::test;

namespace {

// The reply a forward relays, kept whole.
class KeptReply final : public ReplyWriter {
public:
  Response response;

  asio::awaitable<bool> write_head(const Response& head, std::optional<std::uint64_t>) override {
    response = head;
    co_return true;
  }
  asio::awaitable<bool> write_body(std::string_view chunk) override {
    response.body.append(chunk);
    co_return true;
  }
  asio::awaitable<bool> end_body() override { co_return true; }
  asio::awaitable<bool> write(Response& whole) override {
    response = whole;
    co_return true;
  }
  void abandon() override {}
  asio::awaitable<void> gone() override {
    asio::steady_timer never(co_await asio::this_coro::executor,
                             std::chrono::steady_clock::time_point::max());
    co_await never.async_wait(asio::as_tuple(asio::use_awaitable));
  }
};

constexpr UnixSeconds k_now = 1'795'428'000; // 2026-11-23T10:00:00Z

const std::string k_haiku = R"({"model":"claude-haiku-4-5","max_tokens":200,)"
                            R"("messages":[{"role":"user","content":"Hello"}]})";

// A gateway on scratch state, as serve-local --mock-upstream wires it.
struct GatewayCase {
  ScratchDir dir;
  config::Config config = config::defaults();
  FixedClock clock{k_now};
  SystemRandom random;
  std::unique_ptr<store::Store> store = open_store();
  store::StoreEpoch epochs{store.get()}; // read at each look-up: revocations count at once
  store::LedgerWriter writer{*store, {}};
  store::QuotaBook quota{*store, writer, clock};
  std::unique_ptr<KeyringWatch> keys = open_keys();
  std::unique_ptr<Upstream> upstream = mock_upstream(random);
  Metrics metrics;
  RequestLog log;
  bool log_opened = open_log(); // before the gateway writes to it
  std::unique_ptr<Gateway> gateway = open_gateway();

  std::unique_ptr<store::Store> open_store() const {
    auto opened = store::open_sqlite(dir.path() / "claudegate.db");
    REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message));
    return std::move(*opened);
  }

  std::unique_ptr<KeyringWatch> open_keys() const {
    const auto keys_dir = dir.path() / "keys";
    auto ring = Keyring::open(keys_dir, k_now);
    REQUIRE(ring);
    REQUIRE(ring->add(cached_key(Alg::ES256), Rotation::no, k_now, 0));
    auto watch = KeyringWatch::open(keys_dir, clock);
    REQUIRE_MESSAGE(watch, (watch ? "" : watch.error().message));
    return std::move(*watch);
  }

  bool open_log() {
    REQUIRE(log.open(log_path()));
    return true;
  }

  // A gateway that also accepts `idp`'s tokens (serve-local --jwks) when given.
  std::unique_ptr<Gateway> open_gateway(const ExternalIssuer* idp = nullptr) {
    return std::make_unique<Gateway>(GatewayParts{config, *store, epochs, quota, clock, random, *keys,
                                                  *upstream, metrics, log, config.serve.body_limit, idp});
  }

  std::filesystem::path log_path() const { return dir.path() / "requests.log"; }

  std::string token(const std::string& subject, const std::string& plan = "free",
                    std::optional<std::int64_t> daily_limit = std::nullopt) {
    token::AccessTokenRequest request;
    request.subject = subject;
    request.plan = plan;
    request.daily_token_limit = daily_limit;
    return sign(request, cached_key(Alg::ES256));
  }

  std::string sign(const token::AccessTokenRequest& request, const Key& key) {
    auto issued = token::issue(request, key, clock.now(), random);
    REQUIRE_MESSAGE(issued, (issued ? "" : issued.error().message));
    return issued->token;
  }

  Response post(const std::string& bearer, const std::string& body = k_haiku) {
    Request req;
    req.method = "POST";
    req.path = "/v1/messages";
    req.target = "/v1/messages";
    req.body = body;
    req.headers.insert("Content-Type", "application/json");
    req.headers.insert("anthropic-version", "2023-06-01");
    if (!bearer.empty()) {
      req.headers.insert("Authorization", "Bearer " + bearer);
    }
    Outcome outcome = gateway->messages(req);
    if (!outcome.forward) {
      return outcome.response;
    }
    KeptReply kept;
    asio::io_context io;
    asio::co_spawn(io, gateway->forward(std::move(*outcome.forward), kept), asio::detached);
    io.run();
    return kept.response;
  }

  // The ledger's total for `subject` (all days), once the rows queued are written.
  store::UsageRow ledger(const std::string& subject) {
    REQUIRE(writer.flush());
    store::UsageQuery query;
    query.since = 0;
    query.subject = subject;
    auto rows = store->usage(query);
    REQUIRE_MESSAGE(rows, (rows ? "" : rows.error().message));
    return rows->empty() ? store::UsageRow{} : rows->front();
  }

  std::vector<json::Json> log_lines() {
    log.flush();
    std::ifstream in(log_path());
    std::vector<json::Json> lines;
    for (std::string line; std::getline(in, line);) {
      lines.push_back(json::Json::parse(line));
    }
    return lines;
  }
};

json::Json body_of(const Response& res) {
  return json::Json::parse(res.body);
}

// The error envelope's type, checking its shape.
std::string error_type(const Response& res) {
  const auto body = body_of(res);
  CHECK(body["type"] == "error");
  return body["error"]["type"].get<std::string>();
}

} // namespace

TEST_CASE("gateway: a valid request is forwarded, metered into the ledger and logged") {
  GatewayCase g;
  const auto res = g.post(g.token("alice"));
  REQUIRE(res.status == 200);
  const auto body = body_of(res);
  CHECK(body["id"].get<std::string>().starts_with("msg_"));
  const std::int64_t input = body["usage"]["input_tokens"];
  const std::int64_t output = body["usage"]["output_tokens"];
  CHECK(input > 0);
  CHECK(output > 0);

  // The free plan's quota as the reply left: this request's reservation
  // (its input estimate + max_tokens 200) held; the next one sees it settled.
  CHECK(res.header("x-claudegate-quota-limit") == "50000");
  const std::int64_t remaining = std::stoll(res.header("x-claudegate-quota-remaining"));
  CHECK(remaining < 50000 - 200);
  CHECK(remaining > 50000 - 200 - 100);
  CHECK(res.header("x-claudegate-quota-reset") == "2026-11-24T00:00:00Z");
  CHECK_FALSE(res.has_header("claudegate-max-tokens-clamped"));

  const auto row = g.ledger("alice");
  CHECK(row.requests == 1);
  CHECK(row.input_tokens == input);
  CHECK(row.output_tokens == output);
  CHECK(row.estimated_requests == 0);
  const auto next = g.post(g.token("alice")); // the same reply: the same usage
  CHECK(remaining - std::stoll(next.header("x-claudegate-quota-remaining")) == input + output);
  g.quota.close(); // the lease goes back behind the rows
  REQUIRE(g.writer.flush());
  auto status = g.store->quota_status("alice", k_now, 50000);
  REQUIRE(status);
  CHECK(status->used == 2 * (input + output));
  CHECK(status->reserved == 0); // the reservations were settled, not left behind

  const auto lines = g.log_lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["sub"] == "alice");
  CHECK(lines[0]["status"] == 200);
  CHECK(lines[0]["model"] == "claude-haiku-4-5");
  CHECK(lines[0]["input_tokens"] == input);
  CHECK(lines[0]["time"] == "2026-11-23T10:00:00Z");       // the injected clock
  CHECK(lines[0].dump().find("eyJ") == std::string::npos); // never the token
}

TEST_CASE("gateway: no token is a 401 envelope, neither forwarded nor metered") {
  GatewayCase g;
  const auto res = g.post("");
  CHECK(res.status == 401);
  CHECK(error_type(res) == "authentication_error");
  CHECK(body_of(res)["error"]["message"].get<std::string>().find("no credentials") != std::string::npos);
  CHECK(res.has_header("request-id"));
  CHECK(g.ledger("alice").requests == 0);
  CHECK(g.metrics.render().find("status=\"401\"") != std::string::npos);
  const auto lines = g.log_lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["status"] == 401);
}

TEST_CASE("gateway: a token expires on the injected clock, no sleep needed") {
  GatewayCase g;
  const std::string token = g.token("alice"); // 15 minutes, leeway 60 s
  g.clock.set(k_now + 900 + 59); // the last second of the leeway: valid, and remembered as verified
  CHECK(g.post(token).status == 200);
  g.clock.set(k_now + 900 + 60); // the remembered token's claims are checked again
  const auto res = g.post(token);
  CHECK(res.status == 401);
  CHECK(error_type(res) == "authentication_error");
  CHECK(body_of(res)["error"]["message"].get<std::string>().find("expired") != std::string::npos);
  CHECK(g.ledger("alice").requests == 1);
}

TEST_CASE("gateway: a revoked subject is refused at once") {
  GatewayCase g;
  const std::string token = g.token("alice");
  REQUIRE(g.post(token).status == 200);
  REQUIRE(g.store->revoke_subject("alice", k_now, "offboarded", k_now));
  const auto res = g.post(token);
  CHECK(res.status == 401);
  CHECK(body_of(res)["error"]["message"].get<std::string>().find("revoked") != std::string::npos);
}

TEST_CASE("gateway: a model outside the plan is a 403 naming the plan") {
  GatewayCase g;
  const auto res = g.post(g.token("alice"), R"({"model":"claude-opus-4-1","max_tokens":20,"messages":[]})");
  CHECK(res.status == 403);
  CHECK(error_type(res) == "permission_error");
  CHECK(body_of(res)["error"]["message"].get<std::string>().find("plan free") != std::string::npos);
  CHECK(g.ledger("alice").requests == 0);
}

TEST_CASE("gateway: max_tokens above the plan's cap is clamped and says so") {
  GatewayCase g;
  const auto res = g.post(g.token("alice"), R"({"model":"claude-haiku-4-5","max_tokens":8000,)"
                                            R"("messages":[{"role":"user","content":"Hi"}]})");
  REQUIRE(res.status == 200);
  CHECK(res.header("claudegate-max-tokens-clamped") == "4096"); // free: max_tokens 4096
}

TEST_CASE("gateway: a request bigger than what is left today is a 429 until the next UTC day") {
  GatewayCase g;
  store::UsageRecord earlier; // 240 of carol's 300 tokens spent today
  earlier.at = k_now - 3600;
  earlier.subject = "carol";
  earlier.model = "claude-haiku-4-5";
  earlier.status = 200;
  earlier.input_tokens = 240;
  REQUIRE(g.store->settle(0, earlier));
  const auto refused = g.post(g.token("carol", "free", 300)); // the token narrows the plan's quota
  CHECK(refused.status == 429);
  CHECK(error_type(refused) == "rate_limit_error");
  CHECK(body_of(refused)["error"]["message"].get<std::string>().find("60 left today") != std::string::npos);
  CHECK(refused.header("retry-after") == std::to_string(14 * 3600)); // until 2026-11-24T00:00:00Z
  CHECK(g.ledger("carol").requests == 1);                            // the refusal is not a ledger row
  auto status = g.store->quota_status("carol", k_now, 300);
  REQUIRE(status);
  CHECK(status->used == 240);
  CHECK(status->reserved == 0); // and holds nothing

  g.clock.set(k_now + 14 * 3600); // the next UTC day: a fresh quota
  const auto next_day = g.post(g.token("carol", "free", 300));
  CHECK(next_day.status == 200);
  CHECK(next_day.header("x-claudegate-quota-limit") == "300");
}

namespace {

const std::string k_idp_issuer = "https://idp.example/";

// An IdP that serves one key at a time, counting fetches (no network).
struct FakeIdp {
  const Key* serving = nullptr;
  int fetches = 0;

  jwks_remote::Fetcher fetcher() {
    return [this](const std::string&) -> Result<jwks_remote::Document> {
      ++fetches;
      return jwks_remote::Document{jwks::to_document({serving}).dump(), 600};
    };
  }
};

Key generated_key() {
  auto key = Key::generate(Alg::ES256);
  REQUIRE(key);
  return std::move(*key);
}

} // namespace

TEST_CASE("gateway: an IdP's new kid is refetched once 30 s have passed, not before (--jwks)") {
  GatewayCase g;
  const Key first = generated_key();
  const Key second = generated_key();
  FakeIdp idp{&first};
  auto set = jwks_remote::RemoteKeySet::open("https://idp.example/jwks.json", g.clock, {}, idp.fetcher());
  REQUIRE(set);
  REQUIRE((*set)->keys_for({})); // serve-local fetches at start
  const ExternalIssuer issuer{**set, k_idp_issuer, "free"};
  g.gateway = g.open_gateway(&issuer);
  const auto idp_token = [&](const Key& key, const std::string& subject) {
    token::AccessTokenRequest request;
    request.subject = subject;
    request.issuer = k_idp_issuer;
    return g.sign(request, key);
  };

  const std::string dave = idp_token(first, "dave");
  REQUIRE(g.post(dave).status == 200);
  CHECK(g.ledger(k_idp_issuer + "|dave").requests == 1); // metered in the IdP's namespace
  CHECK(g.ledger("dave").requests == 0);
  CHECK(idp.fetches == 1);

  idp.serving = &second; // the IdP rotates
  const std::string frank = idp_token(second, "frank");
  const auto early = g.post(frank);
  CHECK(early.status == 401);
  CHECK(body_of(early)["error"]["message"].get<std::string>().find("unknown kid") != std::string::npos);
  CHECK(idp.fetches == 1); // within 30 s of the last fetch: not refetched

  g.clock.set(k_now + 30);
  CHECK(g.post(frank).status == 200);
  CHECK(idp.fetches == 2);
  CHECK(g.post(dave).status == 401); // the first key left with the refetch
  CHECK(idp.fetches == 2);
}
