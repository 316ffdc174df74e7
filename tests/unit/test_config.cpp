// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/config.hpp"

#include "scratch_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <string>

using namespace claudegate;
using claudegate::test::ScratchDir;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The error message of parsing `toml`, or "" when it parsed.
std::string parse_error(const std::string& toml) {
  const auto parsed = config::parse(toml, "test.toml");
  if (parsed) {
    return "";
  }
  CHECK(parsed.error().code == Errc::config);
  return parsed.error().message;
}

} // namespace

TEST_CASE("config: defaults match DESIGN.md §7") {
  const auto cfg = config::defaults();
  CHECK(cfg.issuer == "claudegate");
  CHECK(cfg.audience == "claude-proxy");
  CHECK(cfg.access_ttl == 15 * 60);
  CHECK(cfg.refresh_ttl == 7 * 86400);
  CHECK(cfg.family_ttl == 30 * 86400);
  CHECK(cfg.leeway == 60);
  CHECK(cfg.max_access_ttl == 24 * 3600);
  CHECK(cfg.serve.listen == "127.0.0.1:8787");
  CHECK(cfg.serve.upstream == "https://api.anthropic.com");
  CHECK(cfg.serve.body_limit == 32 * 1024 * 1024);
  CHECK(cfg.plans.size() == 3);
}

TEST_CASE("config: built-in plans match DESIGN.md §7") {
  const auto cfg = config::defaults();
  const auto* free = cfg.plan("free").value();
  CHECK(free->name == "free");
  CHECK(free->daily_token_limit == 50'000);
  CHECK(free->max_tokens == 4096);
  CHECK(free->models == std::vector<std::string>{"claude-3-5-haiku*", "claude-haiku*", "claude-3-haiku*"});
  const auto* pro = cfg.plan("pro").value();
  CHECK(pro->daily_token_limit == 500'000);
  CHECK(pro->max_tokens == 64'000);
  CHECK(std::find(pro->models.begin(), pro->models.end(), "claude-*sonnet*") != pro->models.end());
  CHECK(std::find(pro->models.begin(), pro->models.end(), "claude-haiku*") != pro->models.end());
  const auto* admin = cfg.plan("admin").value();
  CHECK_FALSE(admin->daily_token_limit.has_value());
  CHECK(admin->models == std::vector<std::string>{"*"});
  CHECK_FALSE(admin->rpm.has_value());
  CHECK_FALSE(admin->max_concurrent.has_value());
}

TEST_CASE("config: an unknown plan lists the known ones") {
  const auto missing = config::defaults().plan("gold");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Errc::config);
  CHECK(contains(missing.error().message, "admin, free, pro"));
}

TEST_CASE("config: an empty file gives the defaults") {
  const auto cfg = config::parse("", "empty.toml");
  REQUIRE(cfg);
  CHECK(cfg->access_ttl == config::defaults().access_ttl);
  CHECK(cfg->plans.size() == 3);
}

TEST_CASE("config: file values override the defaults") {
  const auto cfg = config::parse(R"(
issuer = "https://gate.example"
audience = "team-proxy"
access_ttl = "30m"
refresh_ttl = "14d"
family_ttl = 5184000
leeway = "0s"
max_access_ttl = "2d"
store = "postgresql://gate@db.internal/claudegate"

[serve]
listen = "127.0.0.1:9000"
upstream = "http://127.0.0.1:9999"
body_limit = "1MiB"
read_timeout = "45s"
upstream_timeout = 120
threads = 4
)",
                                 "test.toml");
  REQUIRE(cfg);
  CHECK(cfg->issuer == "https://gate.example");
  CHECK(cfg->audience == "team-proxy");
  CHECK(cfg->access_ttl == 1800);
  CHECK(cfg->refresh_ttl == 14 * 86400);
  CHECK(cfg->family_ttl == 5184000);
  CHECK(cfg->leeway == 0);
  CHECK(cfg->max_access_ttl == 2 * 86400);
  CHECK(cfg->store == "postgresql://gate@db.internal/claudegate");
  CHECK(cfg->serve.listen == "127.0.0.1:9000");
  CHECK(cfg->serve.upstream == "http://127.0.0.1:9999");
  CHECK(cfg->serve.body_limit == 1024 * 1024);
  CHECK(cfg->serve.read_timeout == 45);
  CHECK(cfg->serve.upstream_timeout == 120);
  CHECK(cfg->serve.threads == 4);
}

TEST_CASE("config: plan tables add plans and override built-in keys") {
  const auto cfg = config::parse(R"(
[plans.free]
daily_token_limit = 10000

[plans.team]
models = ["claude-*"]
daily_token_limit = 2_000_000
rpm = 600

[plans.pro]
daily_token_limit = "unlimited"
)",
                                 "test.toml");
  REQUIRE(cfg);
  const auto* free = cfg->plan("free").value();
  CHECK(free->daily_token_limit == 10000);
  CHECK(free->max_tokens == 4096); // kept from the built-in
  CHECK(free->models.size() == 3);
  const auto* team = cfg->plan("team").value();
  CHECK(team->name == "team");
  CHECK(team->models == std::vector<std::string>{"claude-*"});
  CHECK(team->daily_token_limit == 2'000'000);
  CHECK(team->rpm == 600);
  CHECK_FALSE(team->max_tokens.has_value());
  CHECK_FALSE(cfg->plan("pro").value()->daily_token_limit.has_value());
}

TEST_CASE("config: a new plan without models is refused") {
  const auto message = parse_error("[plans.team]\nrpm = 5\n");
  CHECK(contains(message, "test.toml:1:"));
  CHECK(contains(message, "allows no models"));
}

TEST_CASE("config: unknown keys name the file, line and key") {
  const auto message = parse_error("issuer = \"x\"\n\nisuer = \"typo\"\n");
  CHECK(contains(message, "test.toml:3:"));
  CHECK(contains(message, "unknown key \"isuer\""));
  CHECK(contains(message, "did you mean \"issuer\""));
}

TEST_CASE("config: unknown keys inside tables are refused too") {
  CHECK(contains(parse_error("[serve]\nlisten = \"127.0.0.1:1\"\nbodylimit = 5\n"), "test.toml:3:"));
  CHECK(contains(parse_error("[serve]\nlisten = \"127.0.0.1:1\"\nbodylimit = 5\n"), "in [serve]"));
  const auto plan_message = parse_error("[plans.free]\n\n\ndaily_limit = 5\n");
  CHECK(contains(plan_message, "test.toml:4:"));
  CHECK(contains(plan_message, "unknown key \"daily_limit\" in [plans.free]"));
  CHECK(contains(parse_error("[nonsense]\n"), "unknown key \"nonsense\""));
}

TEST_CASE("config: a bad duration names the key, line and accepted forms") {
  const auto message = parse_error("\naccess_ttl = \"15 minutes\"\n");
  CHECK(contains(message, "test.toml:2:"));
  CHECK(contains(message, "access_ttl"));
  CHECK(contains(message, "90s, 15m, 12h, 7d"));
  CHECK(contains(parse_error("leeway = -5\n"), "negative"));
  CHECK(contains(parse_error("access_ttl = 0\n"), "at least 1s"));
  CHECK(contains(parse_error("access_ttl = 1.5\n"), "must be a duration"));
}

TEST_CASE("config: wrong value types are refused") {
  CHECK(contains(parse_error("issuer = 5\n"), "issuer must be a non-empty string"));
  CHECK(contains(parse_error("issuer = \"\"\n"), "non-empty"));
  CHECK(contains(parse_error("serve = 5\n"), "serve must be a table"));
  CHECK(contains(parse_error("[serve]\nthreads = -1\n"), "serve.threads"));
  CHECK(contains(parse_error("[serve]\nbody_limit = \"32 parsecs\"\n"), "serve.body_limit"));
  CHECK(contains(parse_error("[serve]\nupstream = \"ftp://x\"\n"), "http:// or https://"));
  CHECK(contains(parse_error("[plans.free]\nrpm = 0\n"), "plans.free.rpm"));
  CHECK(contains(parse_error("[plans.free]\nmodels = \"claude-*\"\n"), "list of model globs"));
  CHECK(contains(parse_error("[plans.free]\nmodels = []\n"), "allows no models"));
  CHECK(contains(parse_error("[plans.\"bad name\"]\nmodels = [\"x\"]\n"), "plan name"));
}

TEST_CASE("config: access_ttl longer than max_access_ttl is refused") {
  CHECK(contains(parse_error("access_ttl = \"2d\"\n"), "longer than max_access_ttl (1d)"));
  CHECK(config::parse("access_ttl = \"2d\"\nmax_access_ttl = \"7d\"\n", "test.toml"));
}

TEST_CASE("config: TOML syntax errors name the line") {
  const auto message = parse_error("issuer = \"x\"\naudience = \n");
  CHECK(contains(message, "test.toml:2:"));
  CHECK(contains(message, "invalid TOML"));
}

TEST_CASE("config: load gives defaults for a missing optional file") {
  ScratchDir scratch;
  const auto cfg = config::load(scratch.path() / "claudegate.toml", config::Required::no);
  REQUIRE(cfg);
  CHECK(cfg->issuer == "claudegate");
  const auto required = config::load(scratch.path() / "claudegate.toml", config::Required::yes);
  REQUIRE_FALSE(required);
  CHECK(required.error().code == Errc::config);
  CHECK(contains(required.error().message, "not found"));
}

TEST_CASE("config: load reads the file and names it in errors") {
  ScratchDir scratch;
  const auto path = scratch.path() / "claudegate.toml";
  std::ofstream(path) << "issuer = \"from-file\"\n";
  CHECK(config::load(path, config::Required::yes).value().issuer == "from-file");
  std::ofstream(path) << "issuer = \"from-file\"\nleewy = 5\n";
  const auto bad = config::load(path, config::Required::no);
  REQUIRE_FALSE(bad);
  CHECK(contains(bad.error().message, path.string() + ":2:"));
}
