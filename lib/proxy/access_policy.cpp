// SPDX-License-Identifier: Apache-2.0
#include "access_policy.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>

namespace claudegate::proxy::access {

namespace {

constexpr std::string_view k_metrics_route = "/metrics";

constexpr std::array<std::string_view, 4> k_guarded_routes = {"/admin/usage", "/admin/revoke", "/admin/keys",
                                                              k_metrics_route};

// "the role admin" or "one of the roles admin, billing".
std::string required_text(const std::vector<std::string>& roles) {
  if (roles.size() == 1) {
    return fmt::format("the role {}", roles.front());
  }
  return fmt::format("one of the roles {}", fmt::join(roles, ", "));
}

std::string held_text(std::span<const std::string> roles) {
  return roles.empty() ? std::string("the token has no roles")
                       : fmt::format("the token's roles: {}", fmt::join(roles, ", "));
}

} // namespace

std::span<const std::string_view> guarded_routes() {
  return k_guarded_routes;
}

RouteRoles route_roles(const config::AccessConfig& access) {
  return {{"/admin/usage", access.admin_usage},
          {"/admin/revoke", access.admin_revoke},
          {"/admin/keys", access.admin_keys},
          {std::string(k_metrics_route), access.metrics}};
}

AccessPolicy::AccessPolicy(const RouteRoles& configured, Reach reach) : m_reach(reach) {
  for (const std::string_view route : k_guarded_routes) {
    const auto it = configured.find(route);
    m_roles.emplace(std::string(route), it != configured.end()
                                            ? it->second
                                            : std::vector<std::string>{std::string(k_default_role)});
  }
}

bool AccessPolicy::guards(std::string_view route) const {
  if (route == k_metrics_route) {
    return m_reach == Reach::remote;
  }
  return m_roles.contains(route);
}

const std::vector<std::string>& AccessPolicy::roles_for(std::string_view route) const {
  static const std::vector<std::string> k_none;
  const auto it = m_roles.find(route);
  return guards(route) && it != m_roles.end() ? it->second : k_none;
}

std::optional<std::string> AccessPolicy::refusal(std::string_view route,
                                                 std::span<const std::string> caller_roles) const {
  if (!guards(route)) {
    return std::nullopt;
  }
  const auto& allowed = roles_for(route);
  const bool held = std::any_of(allowed.begin(), allowed.end(), [&](const std::string& role) {
    return std::find(caller_roles.begin(), caller_roles.end(), role) != caller_roles.end();
  });
  if (held) {
    return std::nullopt;
  }
  return fmt::format("{} needs {} ({}); use a token issued with --role {}", route, required_text(allowed),
                     held_text(caller_roles), allowed.front());
}

} // namespace claudegate::proxy::access
