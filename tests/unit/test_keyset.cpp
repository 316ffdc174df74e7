// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/keyset.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace claudegate;

namespace {

keys::Key secret_key(char fill) {
  auto key = keys::Key::from_secret(std::string(32, fill));
  REQUIRE(key);
  return std::move(*key);
}

} // namespace

TEST_CASE("keyset: finds keys by exact kid only") {
  keyset::KeySet set;
  CHECK(set.empty());
  const keys::Key a = secret_key('a');
  set.add(a);
  set.add("custom-kid", secret_key('b'));
  CHECK(set.size() == 2);
  REQUIRE(set.find(a.kid()) != nullptr);
  CHECK(set.find(a.kid())->secret() == a.secret());
  REQUIRE(set.find("custom-kid") != nullptr);
  CHECK(set.find("custom-kid")->secret() == std::string(32, 'b'));
  CHECK(set.find("CUSTOM-KID") == nullptr);
  CHECK(set.find("custom-kid ") == nullptr);
  CHECK(set.find("") == nullptr);
  CHECK(set.find(secret_key('b').kid()) == nullptr);
}

TEST_CASE("keyset: adding the same kid replaces the key") {
  keyset::KeySet set;
  set.add("k", secret_key('a'));
  set.add("k", secret_key('b'));
  CHECK(set.size() == 1);
  CHECK(set.find("k")->secret() == std::string(32, 'b'));
}

TEST_CASE("keyset: entries are sorted by kid") {
  keyset::KeySet set;
  set.add("c", secret_key('c'));
  set.add("a", secret_key('a'));
  set.add("b", secret_key('b'));
  const auto entries = set.entries();
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].first == "a");
  CHECK(entries[1].first == "b");
  CHECK(entries[2].first == "c");
  CHECK(entries[2].second == set.find("c"));
}
