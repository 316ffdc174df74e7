// SPDX-License-Identifier: Apache-2.0
// refresh::start_family and refresh::rotate against a real SQLite store in a
// scratch folder, on pinned times (no sleeps): single use, reuse revokes the
// family, expiry, subject cut-offs, and a failed signing leaves the token unused.
#include "claudegate/store/refresh.hpp"

#include "claudegate/jose/keyset.hpp"
#include "claudegate/store/revocation.hpp"

#include "jose_support.hpp"
#include "scratch_dir.hpp"

#include "claudegate/store/sqlite.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>

using namespace claudegate;
using namespace claudegate::keys;
using namespace claudegate::keyset;
using namespace claudegate::test;

namespace {

constexpr UnixSeconds k_start = 1'795'428'000; // 2026-11-23T10:00:00Z
constexpr refresh::Lifetimes k_lifetimes{3600, 4 * 3600};

struct RefreshCase {
  ScratchDir dir;
  std::unique_ptr<store::Store> store = open();
  SystemRandom rng;
  const Key& signer = cached_key(Alg::ES256);

  std::unique_ptr<store::Store> open() const {
    auto opened = store::open_sqlite(dir.path() / "claudegate.db");
    REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message));
    return std::move(*opened);
  }

  refresh::TokenPair start(const std::string& subject = "ci-nightly") {
    token::AccessTokenRequest request;
    request.subject = subject;
    request.plan = "pro";
    request.daily_token_limit = 5000;
    auto pair = refresh::start_family(*store, request, signer, k_lifetimes, k_start, rng);
    REQUIRE_MESSAGE(pair, (pair ? "" : pair.error().message));
    return *pair;
  }

  Result<refresh::TokenPair> rotate(std::string_view presented, UnixSeconds now) {
    return refresh::rotate(*store, presented, signer, k_lifetimes, now, rng);
  }
};

Errc error_of(const Result<refresh::TokenPair>& result) {
  REQUIRE_FALSE(result.has_value());
  return result.error().code;
}

} // namespace

TEST_CASE("refresh: start_family mints an access token with fid and an opaque cgr_ token") {
  RefreshCase c;
  const auto pair = c.start();
  CHECK(pair.refresh_token.starts_with(refresh::k_prefix));
  CHECK(refresh::check_format(pair.refresh_token));
  CHECK(pair.access.claims["fid"] == pair.family_id);
  CHECK(pair.access.claims["sub"] == "ci-nightly");
  CHECK(pair.refresh_expires_at == k_start + k_lifetimes.refresh_ttl);
  // Only the hash is stored: the store knows the family by the token's hash.
  auto family = c.store->family_of(*refresh::hash(pair.refresh_token));
  REQUIRE(family);
  REQUIRE(family->has_value());
  CHECK(**family == pair.family_id);
  auto by_plain_text = c.store->family_of(pair.refresh_token);
  REQUIRE(by_plain_text);
  CHECK_FALSE(by_plain_text->has_value());
}

TEST_CASE("refresh: rotate re-issues the family's grant with a new single-use token") {
  RefreshCase c;
  const auto first = c.start();
  auto second = c.rotate(first.refresh_token, k_start + 60);
  REQUIRE_MESSAGE(second, (second ? "" : second.error().message));
  CHECK(second->family_id == first.family_id);
  CHECK(second->refresh_token != first.refresh_token);
  CHECK(second->refresh_expires_at == k_start + 60 + k_lifetimes.refresh_ttl);
  const auto& claims = second->access.claims;
  CHECK(claims["sub"] == "ci-nightly");
  CHECK(claims["plan"] == "pro");
  CHECK(claims["daily_token_limit"] == 5000);
  CHECK(claims["fid"] == first.family_id);
  CHECK(claims["iat"] == k_start + 60);
  CHECK(second->access.jti != first.access.jti);
  // The successor rotates in turn.
  auto third = c.rotate(second->refresh_token, k_start + 120);
  REQUIRE(third);
  CHECK(third->family_id == first.family_id);
}

TEST_CASE("refresh: presenting a used token again revokes the whole family") {
  RefreshCase c;
  const auto first = c.start();
  auto second = c.rotate(first.refresh_token, k_start + 60);
  REQUIRE(second);
  auto reused = c.rotate(first.refresh_token, k_start + 61);
  CHECK(error_of(reused) == Errc::refresh_reuse);
  // The newest token of the family is dead too, and the family's access tokens are revoked.
  CHECK(error_of(c.rotate(second->refresh_token, k_start + 62)) == Errc::revoked);
  auto verified = token::verify(
      second->access.token,
      [&] {
        KeySet keys;
        keys.add(*c.signer.public_only());
        return keys;
      }(),
      claims::VerifyPolicy{}, k_start + 63);
  REQUIRE(verified);
  auto check = revocation::check(*c.store, *verified);
  REQUIRE_FALSE(check);
  CHECK(check.error().code == Errc::revoked);
  CHECK(check.error().message.find("refresh family " + first.family_id) != std::string::npos);
}

TEST_CASE("refresh: malformed and unknown tokens are refused apart") {
  RefreshCase c;
  CHECK(error_of(c.rotate("", k_start)) == Errc::malformed);
  CHECK(error_of(c.rotate("cgr_short", k_start)) == Errc::malformed);
  CHECK(error_of(c.rotate(std::string("xyz_") + std::string(43, 'A'), k_start)) == Errc::malformed);
  auto unknown = c.rotate(std::string(refresh::k_prefix) + std::string(43, 'A'), k_start);
  CHECK(error_of(unknown) == Errc::claim_mismatch);
}

TEST_CASE("refresh: a token expires after refresh_ttl; a family after family_ttl") {
  RefreshCase c;
  const auto first = c.start();
  CHECK(error_of(c.rotate(first.refresh_token, k_start + k_lifetimes.refresh_ttl + 1)) == Errc::expired);

  // Rotating near the family's end: the successor's expiry is capped by the family's.
  const auto other = c.start("bob");
  UnixSeconds now = k_start;
  std::string token = other.refresh_token;
  while (now + k_lifetimes.refresh_ttl < k_start + k_lifetimes.family_ttl) {
    now += k_lifetimes.refresh_ttl - 1;
    auto next = c.rotate(token, now);
    REQUIRE_MESSAGE(next, (next ? "" : next.error().message));
    CHECK(next->refresh_expires_at <= k_start + k_lifetimes.family_ttl);
    token = next->refresh_token;
  }
  CHECK(error_of(c.rotate(token, k_start + k_lifetimes.family_ttl + 1)) == Errc::expired);
}

TEST_CASE("refresh: revoke --sub stops the families the subject began by the cut-off") {
  RefreshCase c;
  const auto before = c.start("alice");
  auto stopped = c.store->revoke_subject("alice", k_start + 10, "offboarded", k_start + 10);
  REQUIRE(stopped);
  CHECK(*stopped == 1);
  auto refused = c.rotate(before.refresh_token, k_start + 20);
  CHECK(error_of(refused) == Errc::revoked);
  // A family begun after the cut-off is not affected.
  token::AccessTokenRequest request;
  request.subject = "alice";
  auto after = refresh::start_family(*c.store, request, c.signer, k_lifetimes, k_start + 30, c.rng);
  REQUIRE(after);
  CHECK(c.rotate(after->refresh_token, k_start + 40));
}

TEST_CASE("refresh: a signing failure rolls the rotation back, leaving the token unused") {
  RefreshCase c;
  const auto first = c.start();
  const auto public_only = c.signer.public_only();
  REQUIRE(public_only);
  auto failed = refresh::rotate(*c.store, first.refresh_token, *public_only, k_lifetimes, k_start + 5, c.rng);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code != Errc::refresh_reuse);
  // Not counted as used: the same token still rotates once, then is single use.
  auto retried = c.rotate(first.refresh_token, k_start + 6);
  REQUIRE_MESSAGE(retried, (retried ? "" : retried.error().message));
  CHECK(error_of(c.rotate(first.refresh_token, k_start + 7)) == Errc::refresh_reuse);
}
