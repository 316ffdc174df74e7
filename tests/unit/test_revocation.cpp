// SPDX-License-Identifier: Apache-2.0
// revocation::identity_of, check and verify_unrevoked against a real SQLite
// store in a scratch folder, on pinned times: jti deny-list, subject cut-off,
// revoked family, IdP namespaces, and a store that cannot answer.
#include "claudegate/store/revocation.hpp"

#include "jose_support.hpp"
#include "scratch_dir.hpp"
#include "store_support.hpp"

#include "claudegate/store/sqlite.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <memory>
#include <string>

using namespace claudegate;
using namespace claudegate::keys;
using namespace claudegate::keyset;
using namespace claudegate::test;

namespace {

constexpr UnixSeconds k_issued = 1'795'428'000; // 2026-11-23T10:00:00Z

claims::VerifyPolicy local_policy() {
  claims::VerifyPolicy policy;
  policy.issuer = "claudegate";
  policy.audiences = {"claude-proxy"};
  return policy;
}

KeySet verifier() {
  KeySet keys;
  auto public_key = cached_key(Alg::ES256).public_only();
  REQUIRE(public_key);
  keys.add(std::move(*public_key));
  return keys;
}

token::IssuedAccessToken issue(const std::string& subject, UnixSeconds at,
                               std::optional<std::string> family = std::nullopt) {
  token::AccessTokenRequest request;
  request.subject = subject;
  request.family_id = std::move(family);
  SystemRandom rng;
  auto issued = token::issue(request, cached_key(Alg::ES256), at, rng);
  REQUIRE_MESSAGE(issued, (issued ? "" : issued.error().message));
  return *issued;
}

token::VerifiedToken verified(const token::IssuedAccessToken& issued) {
  auto token = token::verify(issued.token, verifier(), local_policy(), issued.issued_at);
  REQUIRE_MESSAGE(token, (token ? "" : token.error().message));
  return *token;
}

std::string revoked_message(const Result<void>& result) {
  REQUIRE_FALSE(result);
  CHECK(result.error().code == Errc::revoked);
  return result.error().message;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("revocation: identity_of takes jti, sub, iat and fid, namespaced for an IdP") {
  const auto token = verified(issue("alice", k_issued, "fam-1"));
  const auto local = revocation::identity_of(token);
  CHECK(local.jti == token.claims["jti"]);
  CHECK(local.subject == "alice");
  CHECK(local.issued_at == k_issued);
  REQUIRE(local.family_id);
  CHECK(*local.family_id == "fam-1");
  const auto external = revocation::identity_of(token, "https://idp.example/");
  CHECK(external.jti == "https://idp.example/|" + local.jti);
  CHECK(external.subject == "https://idp.example/|alice");
  CHECK(*external.family_id == "https://idp.example/|fam-1");
  token::VerifiedToken bare;
  bare.claims = {{"sub", "bob"}};
  const auto none = revocation::identity_of(bare, "iss");
  CHECK(none.jti.empty()); // an absent claim is not namespaced into "iss|"
  CHECK(none.issued_at == 0);
  CHECK_FALSE(none.family_id);
}

TEST_CASE("revocation: check finds a deny-listed jti and names it with the reason") {
  ScratchStore s;
  const auto token = verified(issue("alice", k_issued));
  CHECK(revocation::check(*s.store, token));
  const std::string jti = token.claims["jti"];
  REQUIRE(s.store->revoke_jti(jti, k_issued + 900, "alice", "laptop stolen", k_issued + 10));
  const auto message = revoked_message(revocation::check(*s.store, token));
  CHECK(contains(message, "token jti " + jti + " was revoked at"));
  CHECK(contains(message, "(reason: laptop stolen)"));
  CHECK(revocation::check(*s.store, verified(issue("alice", k_issued)))); // another jti
}

TEST_CASE("revocation: a subject cut-off revokes tokens issued up to it, not after") {
  ScratchStore s;
  const auto before = verified(issue("alice", k_issued));
  const auto at_cutoff = verified(issue("alice", k_issued + 100));
  const auto after = verified(issue("alice", k_issued + 101));
  REQUIRE(s.store->revoke_subject("alice", k_issued + 100, "offboarded", k_issued + 100));
  CHECK(contains(revoked_message(revocation::check(*s.store, before)), "every token of subject alice"));
  revoked_message(revocation::check(*s.store, at_cutoff));
  CHECK(revocation::check(*s.store, after));
  CHECK(revocation::check(*s.store, verified(issue("bob", k_issued)))); // another subject
}

TEST_CASE("revocation: a revoked family revokes its access tokens") {
  ScratchStore s;
  store::NewFamily family{"fam-1",         "ci",     json::Json::object(), k_issued,
                          k_issued + 3600, "hash-1", k_issued + 600};
  REQUIRE(s.store->create_family(family));
  const auto token = verified(issue("ci", k_issued, "fam-1"));
  CHECK(revocation::check(*s.store, token));
  REQUIRE(s.store->revoke_family("fam-1", "reuse", k_issued + 5));
  CHECK(contains(revoked_message(revocation::check(*s.store, token)), "refresh family fam-1"));
}

TEST_CASE("revocation: an IdP's revocations and local ones stay apart") {
  ScratchStore s;
  const auto token = verified(issue("dave", k_issued));
  REQUIRE(s.store->revoke_subject("dave", k_issued + 10, "local dave left", k_issued + 10));
  revoked_message(revocation::check(*s.store, token));
  CHECK(revocation::check(*s.store, token, "https://idp.example/")); // the IdP's dave is someone else
  REQUIRE(s.store->revoke_subject("https://idp.example/|dave", k_issued + 10, "left", k_issued + 10));
  revoked_message(revocation::check(*s.store, token, "https://idp.example/"));
}

TEST_CASE("revocation: verify_unrevoked checks the store only after signature and claims") {
  ScratchStore s;
  const auto issued = issue("alice", k_issued);
  int opened = 0;
  const revocation::StoreSource source = [&]() -> Result<store::Store*> {
    ++opened;
    return s.store.get();
  };
  // A character inside the signature (the last one also holds padding bits,
  // which strict decoding refuses as malformed before any signature check).
  auto tampered = issued.token;
  char& inside = tampered[tampered.size() - 10];
  inside = inside == 'A' ? 'B' : 'A';
  auto bad = revocation::verify_unrevoked(tampered, verifier(), local_policy(), k_issued, source);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == Errc::bad_signature);
  auto expired =
      revocation::verify_unrevoked(issued.token, verifier(), local_policy(), k_issued + 3600, source);
  REQUIRE_FALSE(expired);
  CHECK(expired.error().code == Errc::expired);
  CHECK(opened == 0);
  CHECK(revocation::verify_unrevoked(issued.token, verifier(), local_policy(), k_issued, source));
  CHECK(opened == 1);
  REQUIRE(s.store->revoke_subject("alice", k_issued, "gone", k_issued));
  auto revoked = revocation::verify_unrevoked(issued.token, verifier(), local_policy(), k_issued, source);
  REQUIRE_FALSE(revoked);
  CHECK(revoked.error().code == Errc::revoked);
  // A null store keeps no revocations.
  CHECK(revocation::verify_unrevoked(issued.token, verifier(), local_policy(), k_issued, nullptr));
}

TEST_CASE("revocation: a store that cannot answer is an error, never \"not revoked\"") {
  ScratchStore s;
  const auto issued = issue("alice", k_issued);
  const revocation::StoreSource unavailable = []() -> Result<store::Store*> {
    return fail(Errc::storage, "cannot open the store");
  };
  auto refused =
      revocation::verify_unrevoked(issued.token, verifier(), local_policy(), k_issued, unavailable);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::storage);
  CHECK(refused.error().message == "cannot open the store");

  s.store.reset();
  s.raw("DROP TABLE subject_cutoffs");
  auto broken = store::open_sqlite(s.path); // the schema version still matches: it opens
  REQUIRE_MESSAGE(broken, (broken ? "" : broken.error().message));
  auto checked = revocation::check(**broken, verified(issued));
  REQUIRE_FALSE(checked);
  CHECK(checked.error().code == Errc::storage);
}

TEST_CASE("revocation::revoke records each target by name and refuses unknown families and keys") {
  using claudegate::revocation::Target;
  ScratchStore s;
  constexpr UnixSeconds now = 1'800'000'000;
  REQUIRE(claudegate::revocation::revoke(*s.store, Target::jti, "j-1", "leaked", now) == 0);
  REQUIRE(claudegate::revocation::revoke(*s.store, Target::subject, "mallory", "gone", now) == 0);
  auto listed = s.store->list_revocations();
  REQUIRE(listed);
  CHECK(listed->size() == 2);
  for (const auto target : {Target::family, Target::api_key}) {
    auto unknown = claudegate::revocation::revoke(*s.store, target, "nope", "x", now);
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().code == Errc::claim_mismatch);
  }
  CHECK(s.store->list_revocations()->size() == 2); // nothing recorded for them
}
