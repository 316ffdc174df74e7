// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/config.hpp"

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// Which roles (the token's "roles" claim) may reach serve-local's guarded
// routes: the admin side always, /metrics when other machines may connect.
// Role `admin` unless the configuration names others for a route. Pure.
namespace claudegate::proxy::access {

// The role every guarded route needs unless configured otherwise.
inline constexpr std::string_view k_default_role = "admin";

// The routes a role can guard, by path (the keys of the [access] table).
std::span<const std::string_view> guarded_routes();

// Route path → the roles that may reach it (one of them is enough).
using RouteRoles = std::map<std::string, std::vector<std::string>, std::less<>>;

// The routes and roles of the configuration's [access] table.
RouteRoles route_roles(const config::AccessConfig& access);

// Who serve-local's clients can be: this machine only, or others too
// (--allow-remote), where /metrics is no longer open.
enum class Reach { loopback, remote };

class AccessPolicy {
public:
  // Role admin on every guarded route, a route of `configured` replaced by its
  // roles; /metrics guarded only when `reach` is remote. `configured` names
  // only routes of guarded_routes() (the configuration checks that).
  explicit AccessPolicy(const RouteRoles& configured, Reach reach = Reach::loopback);
  AccessPolicy() : AccessPolicy(RouteRoles{}) {} // the defaults, /metrics open

  // True when `route` needs a role, so a token (false: open, as /healthz).
  bool guards(std::string_view route) const;

  // The roles that may reach guarded `route` (empty for a route not guarded).
  const std::vector<std::string>& roles_for(std::string_view route) const;

  // nullopt when a caller with `caller_roles` may reach `route`; else why
  // not, naming the role(s) required, for a 403.
  std::optional<std::string> refusal(std::string_view route, std::span<const std::string> caller_roles) const;

private:
  RouteRoles m_roles;
  Reach m_reach;
};

} // namespace claudegate::proxy::access
