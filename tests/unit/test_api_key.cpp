// SPDX-License-Identifier: Apache-2.0
// API keys: the cgk_ format, the stored hash, authenticate's verdicts and the
// serve-local cache, against a real SQLite store on pinned times.
#include "claudegate/store/api_key.hpp"

#include "claudegate/store/api_key_cache.hpp"
#include "claudegate/store/grant.hpp"

#include "jose_support.hpp"
#include "store_support.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace claudegate;
using namespace claudegate::test;

namespace {

constexpr UnixSeconds k_now = 1'795'428'000; // 2026-11-23T10:00:00Z
constexpr std::int64_t k_ttl = 90 * 86'400;

struct KeyCase {
  ScratchStore s;
  store::StoreEpoch epochs{s.store.get()};
  SystemRandom rng;
  api_key::MintedKey minted = api_key::mint(rng);
  store::ApiKeyRecord record = create(minted, "billing-svc");

  store::ApiKeyRecord create(const api_key::MintedKey& key, const std::string& subject) {
    token::AccessTokenRequest request;
    request.subject = subject;
    request.plan = "pro";
    request.scope = "claude:messages";
    request.roles = {"admin"};
    request.daily_token_limit = 1234;
    auto made = api_key::new_record(key, request, "billing", k_ttl, k_now);
    REQUIRE_MESSAGE(made, (made ? "" : made.error().message));
    REQUIRE(s.store->create_api_key(*made));
    return *made;
  }

  Result<store::ApiKeyRecord> authenticate(std::string_view presented, UnixSeconds now = k_now + 1) {
    return api_key::authenticate(*s.store, presented, now);
  }
};

template <typename T> Errc error_of(const Result<T>& result) {
  REQUIRE_FALSE(result.has_value());
  return result.error().code;
}

// `key` with its last secret character replaced by another base64url character.
std::string with_other_secret(const api_key::MintedKey& key) {
  std::string changed = key.key;
  changed.back() = changed.back() == 'A' ? 'Q' : 'A';
  return changed;
}

} // namespace

TEST_CASE("api key: minted keys have the cgk_ shape and parse back") {
  SystemRandom rng;
  const auto minted = api_key::mint(rng);
  CHECK(minted.key.starts_with("cgk_"));
  CHECK(minted.parts.id.size() == api_key::k_id_length);
  CHECK(minted.parts.secret.size() == api_key::k_secret_length);
  CHECK(minted.parts.id.find('_') == std::string::npos);
  auto parsed = api_key::parse(minted.key);
  REQUIRE(parsed);
  CHECK(parsed->id == minted.parts.id);
  CHECK(parsed->secret == minted.parts.secret);
  CHECK(api_key::mint(rng).key != minted.key);
}

TEST_CASE("api key: a secret holding _ and - still parses (the id ends at the first _)") {
  const std::string secret = "ab_cd-ef" + std::string(api_key::k_secret_length - 9, 'A') + "A";
  REQUIRE(secret.size() == api_key::k_secret_length);
  auto parsed = api_key::parse("cgk_0123456789abcdef_" + secret);
  REQUIRE(parsed);
  CHECK(parsed->id == "0123456789abcdef");
  CHECK(parsed->secret == secret);
}

TEST_CASE("api key: malformed keys are refused without quoting them") {
  SystemRandom rng;
  const auto minted = api_key::mint(rng);
  const std::string id = minted.parts.id;
  const std::string secret = minted.parts.secret;
  for (const std::string& bad :
       {std::string("cgk_"), "cgk_" + id, "cgk_" + id + "_", "cgr_" + id + "_" + secret,
        "cgk_" + id + "_" + secret + "A", "cgk_" + id.substr(1) + "_" + secret + "A",
        "cgk_0123456789ABCDEF_" + secret, "cgk_" + id + "_" + secret.substr(1) + "=",
        "cgk_" + id + "_" + secret.substr(1) + "+", std::string("eyJhbGciOi.x.y")}) {
    auto parsed = api_key::parse(bad);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == Errc::malformed);
    CHECK(parsed.error().message.find(secret) == std::string::npos);
  }
}

TEST_CASE("api key: the store keeps the SHA-256 of the secret, never the key") {
  KeyCase c;
  auto expected = api_key::hash_secret(c.minted.parts.secret);
  REQUIRE(expected);
  CHECK(c.record.secret_hash == *expected);
  CHECK(expected->size() == 43);
  auto found = c.s.store->find_api_key(c.minted.parts.id);
  REQUIRE(found);
  REQUIRE(found->has_value());
  CHECK((*found)->secret_hash == *expected);
  CHECK((*found)->subject == "billing-svc");
  CHECK((*found)->name == "billing");
  CHECK((*found)->expires_at == k_now + k_ttl);
  auto request = grant::from_json((*found)->grant, "API key");
  REQUIRE(request);
  CHECK(request->plan == "pro");
  CHECK(request->daily_token_limit == 1234);
  CHECK(request->roles == std::vector<std::string>{"admin"});
}

TEST_CASE("api key: authenticate accepts the key and names each failure") {
  KeyCase c;
  auto ok = c.authenticate(c.minted.key);
  REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().message));
  CHECK(ok->id == c.minted.parts.id);

  CHECK(error_of(c.authenticate("cgk_nope")) == Errc::malformed);
  SystemRandom rng;
  CHECK(error_of(c.authenticate(api_key::mint(rng).key)) == Errc::unknown_key);
  auto wrong = c.authenticate(with_other_secret(c.minted));
  CHECK(error_of(wrong) == Errc::bad_signature);
  CHECK(wrong.error().message.find(c.minted.parts.secret.substr(0, 20)) == std::string::npos);
  CHECK(error_of(c.authenticate(c.minted.key, k_now + k_ttl)) == Errc::expired);

  REQUIRE(c.s.store->revoke_api_key(c.minted.parts.id, "leaked", k_now + 5));
  auto revoked = c.authenticate(c.minted.key, k_now + 6);
  CHECK(error_of(revoked) == Errc::revoked);
  CHECK(revoked.error().message.find(c.minted.parts.id) != std::string::npos);
}

TEST_CASE("api key: a rotated key works until the end of its overlap") {
  KeyCase c;
  REQUIRE(c.s.store->retire_api_key(c.minted.parts.id, k_now + 100));
  CHECK(c.authenticate(c.minted.key, k_now + 99));
  CHECK(api_key::state_of(c.record, k_now) == "active");
  auto found = c.s.store->find_api_key(c.minted.parts.id);
  REQUIRE((found && found->has_value()));
  CHECK(api_key::state_of(**found, k_now + 99) == "retiring");
  CHECK(api_key::state_of(**found, k_now + 100) == "retired");
  auto retired = c.authenticate(c.minted.key, k_now + 100);
  CHECK(error_of(retired) == Errc::revoked);
  CHECK(retired.error().message.find("rotated") != std::string::npos);
  // A later retirement never extends an earlier one.
  REQUIRE(c.s.store->retire_api_key(c.minted.parts.id, k_now + 500));
  CHECK(error_of(c.authenticate(c.minted.key, k_now + 200)) == Errc::revoked);
}

TEST_CASE("api key store: unknown ids, idempotent revocation, listing newest first") {
  KeyCase c;
  CHECK(c.s.store->revoke_api_key("0000000000000000", "x", k_now).error().code == Errc::claim_mismatch);
  CHECK(c.s.store->retire_api_key("0000000000000000", k_now).error().code == Errc::claim_mismatch);
  REQUIRE(c.s.store->revoke_api_key(c.minted.parts.id, "first", k_now + 1));
  REQUIRE(c.s.store->revoke_api_key(c.minted.parts.id, "second", k_now + 2));
  auto found = c.s.store->find_api_key(c.minted.parts.id);
  REQUIRE((found && found->has_value()));
  CHECK((*found)->revoked_at == k_now + 1);
  CHECK((*found)->revoked_reason == "first");

  store::ApiKeyRecord newer = c.record;
  newer.id = "00000000000000ff";
  newer.created_at = k_now + 10;
  newer.rotated_from = c.record.id;
  REQUIRE(c.s.store->create_api_key(newer));
  auto listed = c.s.store->list_api_keys();
  REQUIRE(listed);
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0].id == newer.id);
  CHECK((*listed)[0].rotated_from == c.record.id);
  CHECK((*listed)[1].id == c.record.id);
}

TEST_CASE("api key store: revoking and retiring move the revocation epoch on; last use does not") {
  KeyCase c;
  auto epoch = [&] {
    auto read = c.s.store->revocation_epoch();
    REQUIRE(read);
    return *read;
  };
  const auto start = epoch();
  REQUIRE(c.s.store->touch_api_key(c.minted.parts.id, k_now + 30));
  CHECK(epoch() == start);
  auto found = c.s.store->find_api_key(c.minted.parts.id);
  REQUIRE((found && found->has_value()));
  CHECK((*found)->last_used_at == k_now + 30);
  REQUIRE(c.s.store->retire_api_key(c.minted.parts.id, k_now + 100));
  CHECK(epoch() == start + 1);
  REQUIRE(c.s.store->revoke_api_key(c.minted.parts.id, "gone", k_now + 40));
  CHECK(epoch() == start + 2);
}

TEST_CASE("api key cache: a warm key is served without reading the key again, until a revocation") {
  KeyCase c;
  api_key::KeyCache cache(16);
  REQUIRE(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 1));
  CHECK(cache.misses() == 1);
  // Edited behind the store's back (no epoch change): a warm cache does not see it.
  c.s.raw("DROP TRIGGER api_keys_delete_epoch");
  c.s.raw("DELETE FROM api_keys");
  REQUIRE(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 2));
  CHECK(cache.hits() == 1);
  // A wrong secret for a warm id is never a hit.
  CHECK(error_of(cache.authenticate(*c.s.store, c.epochs, with_other_secret(c.minted), k_now + 3))
        == Errc::unknown_key);
}

TEST_CASE("api key cache: a revocation is seen on the next request") {
  KeyCase c;
  api_key::KeyCache cache(16);
  REQUIRE(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 1));
  REQUIRE(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 2));
  CHECK(cache.hits() == 1);
  REQUIRE(c.s.store->revoke_api_key(c.minted.parts.id, "leaked", k_now + 3));
  CHECK(error_of(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 4)) == Errc::revoked);
}

TEST_CASE("api key cache: a warm rotated key stops at the end of its overlap, without a store change") {
  KeyCase c;
  api_key::KeyCache cache(16);
  REQUIRE(c.s.store->retire_api_key(c.minted.parts.id, k_now + 10));
  REQUIRE(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 1));
  REQUIRE(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 9));
  CHECK(error_of(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 10)) == Errc::revoked);
}

TEST_CASE("api key cache: last use is written at most once a minute") {
  KeyCase c;
  api_key::KeyCache cache(16);
  auto last_used = [&] {
    auto found = c.s.store->find_api_key(c.minted.parts.id);
    REQUIRE((found && found->has_value()));
    return (*found)->last_used_at;
  };
  REQUIRE(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 1));
  CHECK(last_used() == k_now + 1);
  REQUIRE(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 30));
  CHECK(last_used() == k_now + 1);
  REQUIRE(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 61));
  CHECK(last_used() == k_now + 61);
}

TEST_CASE("api key: revoke --sub stops the subject's keys made until then, not later ones") {
  KeyCase c;
  REQUIRE(c.s.store->revoke_subject("billing-svc", k_now, "offboarded", k_now + 1));
  auto cut = c.authenticate(c.minted.key, k_now + 2);
  CHECK(error_of(cut) == Errc::revoked);
  CHECK(cut.error().message.find(c.minted.parts.id) != std::string::npos);
  CHECK(cut.error().message.find("billing-svc") != std::string::npos);
  // Through the key store alone (no revocations) the key itself is still fine.
  CHECK(api_key::authenticate(static_cast<store::ApiKeyStore&>(*c.s.store), c.minted.key, k_now + 2));

  SystemRandom rng;
  const auto later = api_key::mint(rng);
  token::AccessTokenRequest request;
  request.subject = "billing-svc";
  auto record = api_key::new_record(later, request, "", k_ttl, k_now + 10);
  REQUIRE(record);
  REQUIRE(c.s.store->create_api_key(*record));
  CHECK(c.authenticate(later.key, k_now + 11));

  api_key::KeyCache cache(16);
  CHECK(error_of(cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 12)) == Errc::revoked);
  CHECK(cache.authenticate(*c.s.store, c.epochs, later.key, k_now + 12));
}

TEST_CASE("api key: the cache gives the token of the key's grant, built once per load") {
  KeyCase c;
  api_key::KeyCache cache(16);
  auto first = cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 1);
  REQUIRE(first);
  const auto& claims = (*first)->token.claims;
  CHECK((*first)->token.header == json::Json{{"typ", "api_key"}});
  CHECK(claims["sub"] == "billing-svc");
  CHECK(claims["plan"] == "pro");
  CHECK(claims["roles"] == json::Json::array({"admin"}));
  CHECK(claims["daily_token_limit"] == 1234);
  CHECK(claims["jti"] == c.record.id);
  CHECK(claims["exp"] == c.record.expires_at);
  auto hit = cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 2);
  auto again = cache.authenticate(*c.s.store, c.epochs, c.minted.key, k_now + 3);
  REQUIRE(hit);
  REQUIRE(again);
  CHECK(again->get() == hit->get()); // hits share the cached entry: no copy, no rebuild
  CHECK((*again)->token.claims == claims);
  CHECK(cache.hits() == 2);
}

TEST_CASE("api key: a rotation stores the successor only with its predecessor's end set") {
  KeyCase c;
  SystemRandom rng;
  const auto successor_of = [&](const std::string& predecessor) {
    token::AccessTokenRequest request;
    request.subject = "billing-svc";
    auto made = api_key::new_record(api_key::mint(rng), request, "", k_ttl, k_now);
    REQUIRE(made);
    made->rotated_from = predecessor;
    return *made;
  };
  const auto orphan = successor_of("0000000000000000");
  CHECK(c.s.store->rotate_api_key(orphan, k_now + 50).error().code == Errc::claim_mismatch);
  CHECK_FALSE(*c.s.store->find_api_key(orphan.id)); // nothing half-written

  const auto next = successor_of(c.record.id);
  REQUIRE(c.s.store->rotate_api_key(next, k_now + 50));
  CHECK(*c.s.store->find_api_key(next.id));
  CHECK((*c.s.store->find_api_key(c.record.id))->retires_at == k_now + 50);
}
