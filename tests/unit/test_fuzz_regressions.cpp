// SPDX-License-Identifier: Apache-2.0
// Replays every saved fuzz input through its target's entry point, without
// libFuzzer, in the ordinary build: the crashes the fuzzers found
// (fuzz/regressions/<target>/) and the hand-written seeds
// (fuzz/seeds/<target>/). A broken invariant aborts the test; under
// scripts/test-sanitize.sh ASan/UBSan catch memory and UB errors too.
#include "../../fuzz/entry_points.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace {

using EntryPoint = void (*)(std::string_view);

const std::vector<std::pair<std::string, EntryPoint>>& entry_points() {
  namespace f = claudegate::fuzz;
  static const std::vector<std::pair<std::string, EntryPoint>> points = {
      {"base64url", f::run_base64url},     {"json", f::run_json},
      {"jws_decode", f::run_jws_decode},   {"token_verify", f::run_token_verify},
      {"auth_header", f::run_auth_header}, {"sse_usage", f::run_sse_usage},
      {"config", f::run_config},           {"oauth_request", f::run_oauth_request}};
  return points;
}

fs::path fuzz_dir() {
  return fs::path(CLAUDEGATE_SOURCE_DIR) / "fuzz";
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Run every file under fuzz/<kind>/<target>/ through the target; the number replayed.
int replay(const std::string& kind) {
  int replayed = 0;
  for (const auto& [target, run] : entry_points()) {
    const auto dir = fuzz_dir() / kind / target;
    if (!fs::is_directory(dir)) {
      continue;
    }
    for (const auto& entry : fs::directory_iterator(dir)) {
      INFO("replaying " << entry.path().string());
      run(read_bytes(entry.path()));
      ++replayed;
    }
  }
  return replayed;
}

} // namespace

TEST_CASE("fuzz: every saved crash input replays without breaking an invariant") {
  REQUIRE(fs::is_directory(fuzz_dir()));
  const int replayed = replay("regressions");
  MESSAGE("replayed " << replayed << " regression inputs");
}

TEST_CASE("fuzz: the hand-written seeds run through every entry point") {
  CHECK(replay("seeds") >= static_cast<int>(entry_points().size()));
}

TEST_CASE("fuzz: the fixed key set verifies a token signed by each of its keys") {
  namespace f = claudegate::fuzz;
  for (const auto& key : f::signing_keys()) {
    const claudegate::json::Json header = {
        {"alg", claudegate::keys::alg_name(key.alg())}, {"typ", "at+jwt"}, {"kid", key.kid()}};
    const claudegate::json::Json claims = {
        {"iss", "claudegate"}, {"aud", "claude-proxy"}, {"exp", f::k_now + 60}, {"scope", "claude:messages"}};
    const auto token = claudegate::jws::sign(header, claims, key);
    REQUIRE(token);
    CHECK(claudegate::token::verify(*token, f::key_set(), f::policy(), f::k_now));
    f::run_token_verify(*token);
  }
}
