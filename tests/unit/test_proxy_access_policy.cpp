// SPDX-License-Identifier: Apache-2.0
#include "proxy/access_policy.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace claudegate::proxy::access;

namespace {

using Roles = std::vector<std::string>;

} // namespace

TEST_CASE("access_policy: every admin route needs role admin by default") {
  const AccessPolicy policy;
  for (const auto* route : {"/admin/usage", "/admin/revoke", "/admin/keys"}) {
    CHECK(policy.guards(route));
    CHECK(policy.roles_for(route) == Roles{"admin"});
    CHECK_FALSE(policy.refusal(route, Roles{"admin"}));
    CHECK_FALSE(policy.refusal(route, Roles{"ops", "admin"}));
    const auto refused = policy.refusal(route, Roles{});
    REQUIRE(refused);
    CHECK(refused->find("needs the role admin") != std::string::npos);
    CHECK(refused->find("the token has no roles") != std::string::npos);
  }
}

TEST_CASE("access_policy: a refusal names the roles required and the roles held") {
  const AccessPolicy policy(RouteRoles{{"/admin/usage", {"admin", "billing"}}});
  const auto refused = policy.refusal("/admin/usage", Roles{"ops", "dev"});
  REQUIRE(refused);
  CHECK(*refused
        == "/admin/usage needs one of the roles admin, billing (the token's roles: ops, dev); "
           "use a token issued with --role admin");
}

TEST_CASE("access_policy: a configured route's roles replace the default, others keep admin") {
  const AccessPolicy policy(RouteRoles{{"/admin/usage", {"billing"}}});
  CHECK_FALSE(policy.refusal("/admin/usage", Roles{"billing"}));
  CHECK(policy.refusal("/admin/usage", Roles{"admin"}));
  CHECK(policy.refusal("/admin/revoke", Roles{"billing"}));
  CHECK_FALSE(policy.refusal("/admin/revoke", Roles{"admin"}));
}

TEST_CASE("access_policy: roles match exactly, case included") {
  const AccessPolicy policy;
  CHECK(policy.refusal("/admin/keys", Roles{"Admin"}));
  CHECK(policy.refusal("/admin/keys", Roles{"admins"}));
}

TEST_CASE("access_policy: /metrics is open on loopback and guarded when remote") {
  const AccessPolicy local;
  CHECK_FALSE(local.guards("/metrics"));
  CHECK(local.roles_for("/metrics").empty());
  CHECK_FALSE(local.refusal("/metrics", Roles{}));

  const AccessPolicy remote(RouteRoles{{"/metrics", {"monitoring"}}}, Reach::remote);
  CHECK(remote.guards("/metrics"));
  CHECK_FALSE(remote.refusal("/metrics", Roles{"monitoring"}));
  const auto refused = remote.refusal("/metrics", Roles{"admin"});
  REQUIRE(refused);
  CHECK(refused->find("needs the role monitoring") != std::string::npos);
}

TEST_CASE("access_policy: other routes need no role") {
  const AccessPolicy policy(RouteRoles{}, Reach::remote);
  CHECK_FALSE(policy.guards("/v1/messages"));
  CHECK_FALSE(policy.guards("/admin"));
  CHECK_FALSE(policy.refusal("/healthz", Roles{}));
}

TEST_CASE("access_policy: guarded_routes lists the admin routes and /metrics") {
  const auto routes = guarded_routes();
  CHECK(routes.size() == 4);
  CHECK(std::find(routes.begin(), routes.end(), "/metrics") != routes.end());
}

TEST_CASE("access_policy: the [access] table of the configuration sets a route's roles") {
  const auto parsed = claudegate::config::parse("[access]\n\"/admin/usage\" = [\"admin\", \"billing\"]\n"
                                                "\"/metrics\" = [\"monitoring\"]\n",
                                                "access.toml");
  REQUIRE(parsed);
  const AccessPolicy policy(route_roles(parsed->access), Reach::remote);
  CHECK_FALSE(policy.refusal("/admin/usage", Roles{"billing"}));
  CHECK(policy.refusal("/admin/revoke", Roles{"billing"}));
  CHECK_FALSE(policy.refusal("/admin/revoke", Roles{"admin"}));
  CHECK_FALSE(policy.refusal("/metrics", Roles{"monitoring"}));
  CHECK(policy.refusal("/metrics", Roles{"admin"}));
  CHECK(route_roles(claudegate::config::defaults().access).at("/admin/keys") == Roles{"admin"});
}

TEST_CASE("access_policy: an unknown route or a bad value in [access] is a config error naming it") {
  for (const auto& [text, message] :
       {std::pair{"[access]\n\"/admin/usgae\" = [\"admin\"]\n", "did you mean \"/admin/usage\"?"},
        std::pair{"[access]\n\"/admin\" = [\"admin\"]\n", "known keys there: /admin/usage, /admin/revoke"},
        std::pair{"[access]\n\"/admin/usage\" = \"admin\"\n", "access./admin/usage must be a non-empty list"},
        std::pair{"[access]\n\"/admin/keys\" = []\n", "access./admin/keys must be a non-empty list"},
        std::pair{"[access]\n\"/admin/keys\" = [\"admin\", 3]\n", "access.toml:2: access./admin/keys"},
        std::pair{"access = 1\n", "access"}}) {
    CAPTURE(text);
    const auto parsed = claudegate::config::parse(text, "access.toml");
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == claudegate::Errc::config);
    CHECK(parsed.error().message.find(message) != std::string::npos);
  }
}
