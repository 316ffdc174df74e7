// SPDX-License-Identifier: Apache-2.0
// Seed corpora for the fuzz targets, written into the build folder:
//   fuzz_make_seeds <vectors dir> <output dir>
// Reads the shared RFC vectors in place (compact tokens, their segments,
// JSON headers and payloads, JWK members) and adds tokens signed with the
// fixed fuzz keys, valid and subtly invalid, so token_verify reaches the
// signature and claims checks. Writes <output dir>/<target>/seed-<n>.
#include "fuzz_keys.hpp"

#include "claudegate/jose/base64url.hpp"
#include "claudegate/jose/jws.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using claudegate::keys::Key;
using nlohmann::json;

namespace {

using Corpus = std::map<std::string, std::set<std::string>>; // target → inputs

bool is_base64url(const std::string& text) {
  return !text.empty()
         && text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
                == std::string::npos;
}

// A token, its three segments and its decoded header and payload.
void add_token(Corpus& corpus, const std::string& token) {
  corpus["jws_decode"].insert(token);
  corpus["token_verify"].insert(token);
  corpus["auth_header"].insert("Authorization: Bearer " + token + "\nConnection: x-trace\nx-trace: 1\n");
  std::size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    const auto end = token.find('.', start);
    const auto segment = token.substr(start, end - start);
    corpus["base64url"].insert(segment);
    if (const auto bytes = claudegate::base64url::decode(segment); bytes && i < 2) {
      corpus["json"].insert(*bytes);
    }
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
}

// Every string in `node`: compact tokens, base64url members and JSON texts.
void harvest(Corpus& corpus, const json& node) {
  if (node.is_object() || node.is_array()) {
    for (const auto& child : node) {
      harvest(corpus, child);
    }
    return;
  }
  if (!node.is_string()) {
    return;
  }
  const auto text = node.get<std::string>();
  if (std::count(text.begin(), text.end(), '.') == 2 && text.size() < 9000) {
    add_token(corpus, text);
  } else if (is_base64url(text) && text.size() < 4096) {
    corpus["base64url"].insert(text);
  } else if (!text.empty() && text.front() == '{') {
    corpus["json"].insert(text);
  }
}

void harvest_vectors(Corpus& corpus, const fs::path& rfc_dir) {
  for (const auto& entry : fs::recursive_directory_iterator(rfc_dir)) {
    if (entry.path().extension() == ".json") {
      std::ifstream in(entry.path());
      harvest(corpus, json::parse(in, nullptr, /*allow_exceptions=*/false));
    }
  }
}

json claims_at(claudegate::UnixSeconds now) {
  return {{"iss", "claudegate"},
          {"sub", "alice"},
          {"aud", "claude-proxy"},
          {"iat", now},
          {"nbf", now},
          {"exp", now + 900},
          {"jti", "fuzz-jti-1"},
          {"plan", "pro"},
          {"scope", "claude:messages"},
          {"roles", {"user"}},
          {"daily_token_limit", 1000}};
}

// Tokens signed by `key`: one valid, and one per claim or header a check refuses.
void add_signed(Corpus& corpus, const Key& key) {
  const json header = {{"alg", claudegate::keys::alg_name(key.alg())}, {"typ", "at+jwt"}, {"kid", key.kid()}};
  const auto now = claudegate::fuzz::k_now;
  std::vector<std::pair<json, json>> cases = {{header, claims_at(now)}};
  for (const auto& [name, value] : std::vector<std::pair<std::string, json>>{
           {"exp", now - 3600}, {"nbf", now + 3600}, {"aud", "other"}, {"iss", "evil"}, {"scope", "none"}}) {
    auto claims = claims_at(now);
    claims[name] = value;
    cases.emplace_back(header, claims);
  }
  auto other_typ = header;
  other_typ["typ"] = "JWT";
  cases.emplace_back(other_typ, claims_at(now));
  for (const auto& [h, c] : cases) {
    if (const auto token = claudegate::jws::sign(h, c, key)) {
      add_token(corpus, *token);
    }
  }
}

void write_corpus(const Corpus& corpus, const fs::path& out_dir) {
  for (const auto& [target, inputs] : corpus) {
    fs::create_directories(out_dir / target);
    int n = 0;
    for (const auto& input : inputs) {
      std::ofstream(out_dir / target / ("seed-" + std::to_string(n++)), std::ios::binary) << input;
    }
    std::printf("%s: %zu seeds\n", target.c_str(), inputs.size());
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_make_seeds <vectors dir> <output dir>\n");
    return 2;
  }
  Corpus corpus;
  if (fs::is_directory(fs::path(argv[1]) / "rfc")) {
    harvest_vectors(corpus, fs::path(argv[1]) / "rfc");
  } else {
    std::fprintf(stderr, "fuzz_make_seeds: no vectors at %s; only the fuzz-key tokens are seeded\n", argv[1]);
  }
  for (const auto& key : claudegate::fuzz::signing_keys()) {
    add_signed(corpus, key);
  }
  write_corpus(corpus, argv[2]);
  return 0;
}
