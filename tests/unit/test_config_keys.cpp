// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/config.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

using namespace claudegate;

namespace {

// A file that sets documented key `key` to `value`, in its table.
std::string file_setting(const std::string& key, const std::string& value) {
  if (key.starts_with("serve.")) {
    return "[serve]\n" + key.substr(6) + " = " + value + "\n";
  }
  if (key.starts_with("plans.NAME.")) {
    const std::string name = key.substr(11);
    const std::string models = name == "models" ? "" : "models = [\"claude-*\"]\n";
    return "[plans.team]\n" + models + name + " = " + value + "\n";
  }
  if (key.starts_with("access.")) {
    return "[access]\n\"" + key.substr(7) + "\" = " + value + "\n";
  }
  return key + " = " + value + "\n";
}

const config::KeyDoc* find_doc(const std::vector<config::KeyDoc>& docs, const std::string& name) {
  const auto found = std::find_if(docs.begin(), docs.end(), [&](const auto& d) { return d.name == name; });
  return found == docs.end() ? nullptr : &*found;
}

} // namespace

TEST_CASE("config keys: key_docs lists every key of every table, each documented") {
  const auto docs = config::key_docs();
  // top level (with serve, plans, access), [serve] (with lockout), [serve.lockout], [plans.NAME], [access]
  CHECK(docs.size() == 11 + 11 + 5 + 7 + 4);
  for (const char* name :
       {"issuer", "max_access_ttl", "store", "serve", "plans", "serve.listen", "serve.max_output_tokens",
        "plans.NAME.models", "plans.NAME.unbounded_input_reserve"}) {
    CAPTURE(name);
    const auto* doc = find_doc(docs, name);
    REQUIRE(doc != nullptr);
    CHECK_FALSE(doc->type.empty());
    CHECK_FALSE(doc->doc.empty());
  }
}

TEST_CASE("config keys: the documented defaults are the parser's defaults") {
  const auto docs = config::key_docs();
  CHECK(find_doc(docs, "access_ttl")->fallback == "\"15m\"");
  CHECK(find_doc(docs, "serve.listen")->fallback == "\"127.0.0.1:8787\"");
  CHECK(find_doc(docs, "serve.body_limit")->fallback == std::to_string(32 * 1024 * 1024));
  CHECK(find_doc(docs, "serve.jwks")->fallback.empty()); // none
  CHECK(find_doc(docs, "plans.NAME.over_cap")->fallback == "\"clamp\"");
  CHECK(find_doc(docs, "plans.NAME.rpm")->fallback == "\"unlimited\"");
}

TEST_CASE("config keys: every documented key parses when set to its documented default") {
  for (const auto& doc : config::key_docs()) {
    if (doc.type == "table" || doc.fallback.empty() || doc.fallback == "[]") {
      continue; // a table, no default (jwks), or a list a plan may not leave empty
    }
    const auto text = file_setting(doc.name, doc.fallback);
    CAPTURE(text);
    const auto parsed = config::parse(text, "keys.toml");
    CHECK(parsed.has_value());
  }
}

TEST_CASE("config keys: a typo is matched against its own table's keys") {
  for (const auto& [text, suggestion] :
       {std::pair{"[serve]\nupstream_timout = 5\n", "did you mean \"upstream_timeout\"?"},
        std::pair{"[plans.x]\nmax_concurent = 1\n", "did you mean \"max_concurrent\"?"},
        std::pair{"audiance = \"a\"\n", "did you mean \"audience\"?"}}) {
    CAPTURE(text);
    const auto parsed = config::parse(text, "keys.toml");
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message.find(suggestion) != std::string::npos);
  }
}
