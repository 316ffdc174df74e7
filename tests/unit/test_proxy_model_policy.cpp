// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/model_policy.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace claudegate;
using namespace claudegate::proxy;
using json::Json;

TEST_CASE("model_policy: glob_match with * and ?") {
  CHECK(glob_match("claude-3-5-haiku*", "claude-3-5-haiku-20241022"));
  CHECK(glob_match("claude-*sonnet*", "claude-sonnet-4-5"));
  CHECK(glob_match("claude-*sonnet*", "claude-3-7-sonnet-20250219"));
  CHECK_FALSE(glob_match("claude-*sonnet*", "claude-opus-4-1"));
  CHECK(glob_match("*", ""));
  CHECK(glob_match("*", "anything"));
  CHECK(glob_match("", ""));
  CHECK_FALSE(glob_match("", "x"));
  CHECK(glob_match("a?c", "abc"));
  CHECK_FALSE(glob_match("a?c", "ac"));
  CHECK(glob_match("**a**", "a"));
  CHECK(glob_match("*a*b", "xaxxab"));
  CHECK_FALSE(glob_match("*a*b", "xaxxa"));
  CHECK(glob_match("exact", "exact"));
  CHECK_FALSE(glob_match("exact", "exactly"));
  CHECK_FALSE(glob_match("exact*x", "exact"));
}

TEST_CASE("model_policy: glob_match is case-sensitive and treats other characters literally") {
  CHECK_FALSE(glob_match("claude-haiku*", "Claude-Haiku-4-5"));
  CHECK(glob_match("[a]", "[a]"));
  CHECK_FALSE(glob_match("[a]", "a"));
  CHECK(glob_match("a.b", "a.b"));
  CHECK_FALSE(glob_match("a.b", "axb"));
}

TEST_CASE("model_policy: glob_match does not backtrack exponentially") {
  const std::string text(20000, 'a');
  CHECK_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*b", text));
  CHECK(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*", text));
}

TEST_CASE("model_policy: grant from the built-in free plan") {
  const auto config = config::defaults();
  const auto grant =
      grant_for(Json{{"sub", "alice"}, {"plan", "free"}, {"scope", "claude:messages  other"}}, config);
  REQUIRE(grant);
  CHECK(grant->subject == "alice");
  CHECK(grant->plan == "free");
  CHECK(grant->scopes == std::vector<std::string>{"claude:messages", "other"});
  CHECK(grant->daily_token_limit == 50000);
  CHECK(grant->max_tokens == 4096);
  CHECK(grant->rpm == config.plans.at("free").rpm);
  CHECK(grant->max_concurrent == config.plans.at("free").max_concurrent);
  CHECK(has_scope(*grant, "claude:messages"));
  CHECK_FALSE(has_scope(*grant, "claude"));
  CHECK(model_allowed(*grant, "claude-3-5-haiku-20241022"));
  CHECK(model_allowed(*grant, "claude-haiku-4-5"));
  CHECK_FALSE(model_allowed(*grant, "claude-sonnet-4-5"));
}

TEST_CASE("model_policy: daily_token_limit claim overrides the plan") {
  const auto config = config::defaults();
  const auto grant = grant_for(Json{{"sub", "ci"}, {"plan", "admin"}, {"daily_token_limit", 1234}}, config);
  REQUIRE(grant);
  CHECK(grant->daily_token_limit == 1234);
  CHECK(model_allowed(*grant, "claude-opus-4-1"));
  const auto unlimited = grant_for(Json{{"sub", "ci"}, {"plan", "admin"}}, config);
  REQUIRE(unlimited);
  CHECK_FALSE(unlimited->daily_token_limit);
  CHECK_FALSE(unlimited->rpm);
  const auto whole_float =
      grant_for(Json{{"sub", "ci"}, {"plan", "pro"}, {"daily_token_limit", 100.0}}, config);
  REQUIRE(whole_float);
  CHECK(whole_float->daily_token_limit == 100);
}

TEST_CASE("model_policy: invalid daily_token_limit claims are refused") {
  const auto config = config::defaults();
  for (const Json& limit : {Json(-1), Json(1.5), Json("100"), Json::array()}) {
    CAPTURE(limit.dump());
    const auto grant = grant_for(Json{{"sub", "ci"}, {"plan", "pro"}, {"daily_token_limit", limit}}, config);
    REQUIRE_FALSE(grant);
    CHECK(grant.error().code == Errc::claim_mismatch);
  }
}

TEST_CASE("model_policy: missing or unknown plan is a claim mismatch") {
  const auto config = config::defaults();
  const auto missing = grant_for(Json{{"sub", "bob"}}, config);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Errc::claim_mismatch);
  CHECK(missing.error().message == "token has no plan");
  const auto unknown = grant_for(Json{{"sub", "bob"}, {"plan", "platinum"}}, config);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == Errc::claim_mismatch);
  CHECK(unknown.error().message.find("platinum") != std::string::npos);
  const auto no_sub = grant_for(Json{{"plan", "free"}}, config);
  REQUIRE_FALSE(no_sub);
  CHECK(no_sub.error().code == Errc::claim_mismatch);
  CHECK_FALSE(grant_for(Json::array(), config));
}

TEST_CASE("model_policy: scopes as an array, or from scp") {
  const auto config = config::defaults();
  const auto array = grant_for(Json{{"sub", "s"}, {"plan", "free"}, {"scope", {"a", "b", 3}}}, config);
  REQUIRE(array);
  CHECK(array->scopes == std::vector<std::string>{"a", "b"});
  const auto scp = grant_for(Json{{"sub", "s"}, {"plan", "free"}, {"scp", {"claude:messages"}}}, config);
  REQUIRE(scp);
  CHECK(has_scope(*scp, "claude:messages"));
  const auto none = grant_for(Json{{"sub", "s"}, {"plan", "free"}}, config);
  REQUIRE(none);
  CHECK(none->scopes.empty());
}

TEST_CASE("model_policy: an IdP token gets the configured plan only; claims narrow, never widen") {
  const auto config = config::defaults();
  const Json claims = {{"sub", "alice"},
                       {"plan", "admin"},
                       {"scope", "claude:messages"},
                       {"daily_token_limit", 9'000'000'000}};
  const auto grant = external_grant_for(claims, config, "free", "https://idp.example/").value();
  CHECK(grant.plan == "free"); // not the "admin" it claims
  CHECK(grant.daily_token_limit == std::optional<std::int64_t>(50'000));
  CHECK(grant.models == config.plans.at("free").models);
  CHECK(grant.subject == "https://idp.example/|alice"); // apart from a local alice
  const Json lower = {{"sub", "bob"}, {"daily_token_limit", 1000}};
  CHECK(external_grant_for(lower, config, "free", "iss").value().daily_token_limit
        == std::optional<std::int64_t>(1000));
  const Json unlimited_plan = {{"sub", "bob"}, {"daily_token_limit", 1000}};
  CHECK(external_grant_for(unlimited_plan, config, "admin", "iss").value().daily_token_limit
        == std::optional<std::int64_t>(1000));
  CHECK_FALSE(external_grant_for(Json{{"plan", "free"}}, config, "free", "iss")); // no sub
  CHECK_FALSE(external_grant_for(lower, config, "gold", "iss"));                  // unknown plan
}

TEST_CASE("model_policy: plans carry over_cap and the unbounded-input reserve into the grant") {
  auto config = config::defaults();
  config.plans.at("pro").over_cap = config::OverCap::reject;
  config.plans.at("pro").unbounded_input_reserve = 20'000;
  const auto grant = grant_for(Json{{"sub", "a"}, {"plan", "pro"}}, config).value();
  CHECK(grant.over_cap == config::OverCap::reject);
  CHECK(grant.unbounded_input_reserve == std::optional<std::int64_t>(20'000));
  CHECK(grant_for(Json{{"sub", "a"}, {"plan", "free"}}, config).value().over_cap == config::OverCap::clamp);
  CHECK(allowed_models_text(grant).find("claude-*sonnet*") != std::string::npos);
}
