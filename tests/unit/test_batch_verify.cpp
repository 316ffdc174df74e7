// SPDX-License-Identifier: Apache-2.0
// batch_verify: the engine of `verify --batch` on in-memory input and
// output: results in input order across threads and chunks, one result per
// line whatever the line holds, the revocation check on and off, and the
// result line written as the result document's dump().
#include "claudegate/store/batch_verify.hpp"

#include "jose_support.hpp"
#include "store_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

using namespace claudegate;
using namespace claudegate::test;
namespace bv = claudegate::batch_verify;

namespace {

constexpr UnixSeconds k_now = 1'795'428'000; // 2026-11-23T10:00:00Z

claims::VerifyPolicy local_policy() {
  claims::VerifyPolicy policy;
  policy.issuer = "claudegate";
  policy.audiences = {"claude-proxy"};
  return policy;
}

std::shared_ptr<const keyset::KeySet> verifier() {
  auto keys = std::make_shared<keyset::KeySet>();
  auto public_key = cached_key(keys::Alg::ES256).public_only();
  REQUIRE(public_key);
  keys->add(std::move(*public_key));
  return keys;
}

token::IssuedAccessToken issue(const std::string& subject, json::Json extra = json::Json::object()) {
  token::AccessTokenRequest request;
  request.subject = subject;
  request.extra_claims = std::move(extra);
  SystemRandom rng;
  auto issued = token::issue(request, cached_key(keys::Alg::ES256), k_now, rng);
  REQUIRE_MESSAGE(issued, (issued ? "" : issued.error().message));
  return *issued;
}

// `text` handed out at most `piece` bytes per read, as a pipe would.
bv::Reader string_reader(std::string text, std::size_t piece = 1 << 20) {
  auto offset = std::make_shared<std::size_t>(0);
  return [text = std::move(text), offset, piece](std::span<char> buffer) {
    const std::size_t n = std::min({buffer.size(), piece, text.size() - *offset});
    std::copy_n(text.data() + *offset, n, buffer.data());
    *offset += n;
    return n;
  };
}

bv::StoreOpener no_store() {
  return []() -> Result<std::unique_ptr<store::Store>> { return nullptr; };
}

struct Batch {
  std::string output;
  int writes = 0;
  bv::BatchOutcome outcome;

  std::vector<json::Json> lines() const {
    std::vector<json::Json> parsed;
    std::size_t start = 0;
    for (auto end = output.find('\n'); end != std::string::npos; end = output.find('\n', start)) {
      parsed.push_back(json::Json::parse(output.substr(start, end - start)));
      start = end + 1;
    }
    CHECK(start == output.size()); // every line ends with '\n'
    return parsed;
  }
};

Batch run_batch(bv::TokenChecker& checker, std::string input, const bv::StoreOpener& store = no_store(),
                bv::BatchOptions options = {}, std::size_t piece = 1 << 20) {
  Batch batch;
  batch.outcome = bv::run(
      checker, string_reader(std::move(input), piece),
      [&batch](std::string_view lines) {
        batch.output += lines;
        ++batch.writes;
        return true;
      },
      store, options);
  return batch;
}

} // namespace

TEST_CASE("batch_verify: results come back in input order across threads and chunks") {
  constexpr std::size_t k_tokens = 700;
  std::string input;
  for (std::size_t i = 0; i < k_tokens; ++i) {
    input += issue("user-" + std::to_string(i)).token + "\n";
  }
  bv::KeySource keys(verifier());
  bv::TokenChecker checker(keys, local_policy(), k_now, false);
  REQUIRE(checker.parallel_safe());
  bv::BatchOptions options;
  options.threads = 4;
  options.chunk_bytes = 64 * 1024; // about 250 tokens: several chunks, four threads each
  const auto batch = run_batch(checker, input, no_store(), options, 50 * 1024);
  CHECK_FALSE(batch.outcome.first_failure);
  CHECK_FALSE(batch.outcome.write_failed);
  CHECK(batch.writes > 4); // more than one chunk of four workers
  const auto lines = batch.lines();
  REQUIRE(lines.size() == k_tokens);
  for (std::size_t i = 0; i < k_tokens; ++i) {
    CAPTURE(i);
    CHECK(lines[i]["valid"] == true);
    CHECK(lines[i]["claims"]["sub"] == "user-" + std::to_string(i));
  }
}

TEST_CASE("batch_verify: a bad line and an empty line each get a refusal; the first failure is reported") {
  bv::KeySource keys(verifier());
  bv::TokenChecker checker(keys, local_policy(), k_now, false);
  const std::string input = issue("alice").token + "\nnot-a-token\n\n" + issue("bob").token; // no final '\n'
  const auto batch = run_batch(checker, input);
  const auto lines = batch.lines();
  REQUIRE(lines.size() == 4);
  CHECK(lines[0]["claims"]["sub"] == "alice");
  CHECK(lines[1] == json::Json{{"valid", false}, {"code", "malformed"}, {"error", lines[1]["error"]}});
  CHECK(lines[2]["valid"] == false);
  CHECK(lines[2]["code"] == "malformed");
  CHECK(lines[3]["claims"]["sub"] == "bob");
  REQUIRE(batch.outcome.first_failure);
  CHECK(*batch.outcome.first_failure == Errc::malformed);
  CHECK(run_batch(checker, "").output.empty());
}

TEST_CASE("batch_verify: revoked tokens are refused with the check on, accepted with it off") {
  ScratchStore s;
  const auto alice = issue("alice");
  const auto bob = issue("bob");
  REQUIRE(s.store->revoke_jti(bob.jti, k_now + 900, "bob", "left", k_now));
  const std::string input = alice.token + "\n" + bob.token + "\n";
  std::atomic<int> opened = 0;
  const bv::StoreOpener store = [&] {
    ++opened;
    return bv::open_existing_sqlite(s.path);
  };
  bv::KeySource keys(verifier());

  bv::TokenChecker checking(keys, local_policy(), k_now, true);
  const auto on = run_batch(checking, input, store);
  auto lines = on.lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["valid"] == true);
  CHECK(lines[1]["code"] == "revoked");
  REQUIRE(on.outcome.first_failure);
  CHECK(*on.outcome.first_failure == Errc::revoked);
  CHECK(opened == 1); // one thread, one store, opened once

  bv::TokenChecker offline(keys, local_policy(), k_now, false);
  const auto off = run_batch(offline, input, store);
  lines = off.lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[1]["valid"] == true);
  CHECK_FALSE(off.outcome.first_failure);
  CHECK(opened == 1); // never asked for the store
}

TEST_CASE("batch_verify: a token that fails its signature never opens the store; no store file keeps none") {
  ScratchDir dir;
  const auto missing = dir.path() / "claudegate.db";
  int opened = 0;
  const bv::StoreOpener store = [&] {
    ++opened;
    return bv::open_existing_sqlite(missing);
  };
  bv::KeySource keys(verifier());
  bv::TokenChecker checker(keys, local_policy(), k_now, true);
  auto token = issue("alice").token;
  token.back() = token.back() == 'A' ? 'B' : 'A';
  CHECK(run_batch(checker, token + "\nx\n", store).lines().size() == 2);
  CHECK(opened == 0);
  const auto batch = run_batch(checker, issue("alice").token + "\n", store);
  CHECK(batch.lines().at(0)["valid"] == true);
  CHECK(opened == 1);
  CHECK_FALSE(std::filesystem::exists(missing)); // not created just to be read
}

TEST_CASE("batch_verify: a writer that fails stops the batch") {
  bv::KeySource keys(verifier());
  bv::TokenChecker checker(keys, local_policy(), k_now, false);
  int writes = 0;
  const auto outcome = bv::run(checker, string_reader(issue("alice").token + "\n"),
                               [&writes](std::string_view) {
                                 ++writes;
                                 return false;
                               },
                               no_store(), {});
  CHECK(outcome.write_failed);
  CHECK(writes == 1);
}

TEST_CASE("batch_verify: a result line is the result document's dump()") {
  bv::KeySource keys(verifier());
  bv::TokenChecker checker(keys, local_policy(), k_now, false);
  bv::LazyStore store(no_store());
  const auto extra =
      json::Json::parse(R"({"team":"caf\u00e9 \"x\"","ratio":0.25,"nested":{"b":[1,-2],"a":null}})");
  const std::vector<Result<token::VerifiedToken>> verdicts = {
      checker.check(issue("alice", extra).token, store),
      checker.check("a.b.c", store),
      fail(Errc::revoked, "token jti \"x\" was revoked\n(reason: \xe2\x82\xac)"),
  };
  for (const auto& verified : verdicts) {
    std::string line = "previous\n";
    bv::append_result_line(line, verified);
    CHECK(line == "previous\n" + bv::result_document(verified).dump() + "\n");
  }
  REQUIRE(verdicts[0]);
  CHECK(bv::result_document(verdicts[0])["claims"]["team"] == "caf\xc3\xa9 \"x\"");
}
