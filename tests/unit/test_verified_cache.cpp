// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/verified_cache.hpp"

#include "claudegate/store/sqlite.hpp"

#include "jose_support.hpp"
#include "scratch_dir.hpp"
#include "store_support.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>

using namespace claudegate;
using namespace claudegate::test;

namespace {

constexpr UnixSeconds k_issued = 1'795'428'000; // 2026-11-23T10:00:00Z
constexpr std::int64_t k_ttl = 900;

claims::VerifyPolicy cache_policy() {
  claims::VerifyPolicy policy;
  policy.issuer = "claudegate";
  policy.audiences = {"claude-proxy"};
  return policy;
}

token::IssuedAccessToken issue_token(keys::Alg alg, const std::string& subject = "alice") {
  token::AccessTokenRequest request;
  request.subject = subject;
  request.ttl = k_ttl;
  SystemRandom rng;
  auto issued = token::issue(request, cached_key(alg), k_issued, rng);
  REQUIRE_MESSAGE(issued, (issued ? "" : issued.error().message));
  return *issued;
}

keyset::KeySet public_keys(keys::Alg alg) {
  keyset::KeySet keys;
  auto public_key = cached_key(alg).public_only();
  REQUIRE(public_key);
  keys.add(std::move(*public_key));
  return keys;
}

Errc error_of(const Result<token::VerifiedToken>& result) {
  REQUIRE_FALSE(result.has_value());
  return result.error().code;
}

// One token of `alg` with its verifier keys, a scratch store and a cache of 16.
struct CacheCase {
  explicit CacheCase(keys::Alg alg) : issued(issue_token(alg)), keys(public_keys(alg)) {}

  // The cache's verdict on the token at `now` under `policy`.
  Result<token::VerifiedToken> verify(UnixSeconds now, const claims::VerifyPolicy& policy = cache_policy()) {
    return verify_with(issued.token, keys, now, policy);
  }
  // The cache's verdict on `token` with `with` at `now` under `policy`.
  Result<token::VerifiedToken> verify_with(std::string_view token, const keyset::KeySet& with,
                                           UnixSeconds now,
                                           const claims::VerifyPolicy& policy = cache_policy()) {
    return cache.verify(token, with, policy, now, s.store.get(), epochs);
  }

  ScratchStore s;
  store::StoreEpoch epochs{s.store.get()};
  verified_cache::VerifiedCache cache{16};
  token::IssuedAccessToken issued;
  keyset::KeySet keys;
};

} // namespace

TEST_CASE("verified cache: the same token again is a hit with the same claims") {
  CacheCase c(keys::Alg::ES256);
  auto first = c.verify(k_issued + 1);
  REQUIRE(first);
  auto second = c.verify(k_issued + 2);
  REQUIRE(second);
  CHECK(second->claims == first->claims);
  CHECK(second->kid == first->kid);
  CHECK(c.cache.hits() == 1);
  CHECK(c.cache.misses() == 1);
}

TEST_CASE("verified cache: a revocation written after the first check is seen at once") {
  CacheCase c(keys::Alg::EdDSA);
  REQUIRE(c.verify(k_issued + 1));

  SUBCASE("by jti, from another connection") {
    auto other = c.s.open();
    REQUIRE(other->revoke_jti(c.issued.jti, c.issued.expires_at, "alice", "leaked", k_issued + 2));
  }
  SUBCASE("by subject cut-off") {
    REQUIRE(c.s.store->revoke_subject("alice", k_issued + 2, "left", k_issued + 2));
  }
  SUBCASE("by a row an operator inserted with the sqlite3 shell") {
    c.s.raw("INSERT INTO revoked_jtis (jti, subject, reason, revoked_at) VALUES ('" + c.issued.jti
            + "', 'alice', 'by hand', 0)");
  }
  CHECK(error_of(c.verify(k_issued + 3)) == Errc::revoked);
  CHECK(c.cache.hits() == 0);
}

TEST_CASE("verified cache: an unrelated revocation costs one full check, then hits again") {
  CacheCase c(keys::Alg::ES256);
  REQUIRE(c.verify(k_issued));
  REQUIRE(c.s.store->revoke_subject("bob", k_issued, "left", k_issued));
  REQUIRE(c.verify(k_issued));
  REQUIRE(c.verify(k_issued));
  CHECK(c.cache.misses() == 2);
  CHECK(c.cache.hits() == 1);
}

TEST_CASE("verified cache: claims are checked again on every hit") {
  CacheCase c(keys::Alg::ES256);
  const auto policy = cache_policy();
  REQUIRE(c.verify(k_issued, policy));

  SUBCASE("expired since") {
    CHECK(error_of(c.verify(c.issued.expires_at + policy.leeway + 1, policy)) == Errc::expired);
  }
  SUBCASE("a stricter policy") {
    auto other = policy;
    other.audiences = {"another-service"};
    CHECK(error_of(c.verify(k_issued, other)) == Errc::claim_mismatch);
  }
  CHECK(c.cache.hits() == 0);
}

TEST_CASE("verified cache: a retired key or different key material is never trusted from the cache") {
  CacheCase c(keys::Alg::ES256);
  REQUIRE(c.verify(k_issued));

  SUBCASE("the kid is gone") {
    CHECK(error_of(c.verify_with(c.issued.token, keyset::KeySet{}, k_issued)) == Errc::unknown_key);
  }
  SUBCASE("the kid now names other material") {
    keyset::KeySet swapped;
    auto other = cached_key(keys::Alg::ES384).public_only();
    REQUIRE(other);
    swapped.add(c.issued.kid, std::move(*other));
    CHECK_FALSE(c.verify_with(c.issued.token, swapped, k_issued));
  }
  CHECK(c.cache.hits() == 0);
}

TEST_CASE("verified cache: a changed byte is a different token and fails in full") {
  CacheCase c(keys::Alg::RS256);
  REQUIRE(c.verify(k_issued));
  auto tampered = c.issued.token;
  tampered[tampered.size() - 2] = tampered[tampered.size() - 2] == 'A' ? 'B' : 'A';
  CHECK(error_of(c.verify_with(tampered, c.keys, k_issued)) == Errc::bad_signature);
}

TEST_CASE("verified cache: a full cache makes room and keeps verifying correctly") {
  ScratchStore s;
  store::StoreEpoch epochs(s.store.get());
  verified_cache::VerifiedCache cache(2);
  const auto keys = public_keys(keys::Alg::EdDSA);
  std::vector<token::IssuedAccessToken> tokens;
  for (const char* subject : {"a", "b", "c", "d"}) {
    tokens.push_back(issue_token(keys::Alg::EdDSA, subject));
  }
  for (int round = 0; round < 2; ++round) {
    for (const auto& issued : tokens) {
      auto verified = cache.verify(issued.token, keys, cache_policy(), k_issued, s.store.get(), epochs);
      REQUIRE(verified);
      CHECK(verified->claims["jti"] == issued.jti);
    }
  }
  CHECK(cache.hits() + cache.misses() == 8);
}

TEST_CASE("verified cache: without a store, only signature and claims are cached") {
  verified_cache::VerifiedCache cache(4);
  store::StoreEpoch no_store(nullptr);
  const auto issued = issue_token(keys::Alg::ES256);
  const auto keys = public_keys(keys::Alg::ES256);
  REQUIRE(cache.verify(issued.token, keys, cache_policy(), k_issued, nullptr, no_store));
  REQUIRE(cache.verify(issued.token, keys, cache_policy(), k_issued, nullptr, no_store));
  CHECK(cache.hits() == 1);
}
