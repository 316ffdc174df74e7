// SPDX-License-Identifier: Apache-2.0
#include "claudegate/proxy/model_policy.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace claudegate::proxy {

namespace {

using json::Json;

// Space-separated scopes (RFC 8693 "scope") or an array of them (Okta's "scp").
std::vector<std::string> scopes_from(const Json& value) {
  std::vector<std::string> scopes;
  if (value.is_array()) {
    for (const auto& item : value) {
      if (item.is_string() && !item.get_ref<const std::string&>().empty()) {
        scopes.push_back(item.get<std::string>());
      }
    }
    return scopes;
  }
  if (!value.is_string()) {
    return scopes;
  }
  const std::string_view text = value.get_ref<const std::string&>();
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = std::min(text.find(' ', start), text.size());
    if (end > start) {
      scopes.emplace_back(text.substr(start, end - start));
    }
    start = end + 1;
  }
  return scopes;
}

std::vector<std::string> scopes_of(const Json& claims) {
  if (const auto scope = claims.find("scope"); scope != claims.end()) {
    return scopes_from(*scope);
  }
  if (const auto scp = claims.find("scp"); scp != claims.end()) {
    return scopes_from(*scp);
  }
  return {};
}

// A non-negative whole number claim; issuers may write 100000 as 100000.0.
std::optional<std::int64_t> whole_number(const Json& value) {
  constexpr auto k_max = std::numeric_limits<std::int64_t>::max();
  if (value.is_number_unsigned()) {
    const auto n = value.get<std::uint64_t>();
    return n > static_cast<std::uint64_t>(k_max) ? k_max : static_cast<std::int64_t>(n);
  }
  if (value.is_number_integer()) {
    const auto n = value.get<std::int64_t>();
    return n < 0 ? std::nullopt : std::optional(n);
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::isfinite(d) && d >= 0 && d < 9.2e18 && std::floor(d) == d) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

// The claim's daily_token_limit, which beats the plan's; nullopt when absent.
Result<std::optional<std::int64_t>> limit_override(const Json& claims) {
  const auto found = claims.find("daily_token_limit");
  if (found == claims.end() || found->is_null()) {
    return std::optional<std::int64_t>{};
  }
  if (const auto limit = whole_number(*found)) {
    return std::optional<std::int64_t>{*limit};
  }
  return fail(Errc::claim_mismatch, "token claim daily_token_limit must be a non-negative integer");
}

Result<const config::Plan*> plan_named(const std::string& name, const config::Config& config) {
  const auto plan = config.plans.find(name);
  if (plan == config.plans.end()) {
    return fail(Errc::claim_mismatch,
                fmt::format("token plan \"{}\" is not configured on this gateway", name.substr(0, 64)));
  }
  return &plan->second;
}

Result<const config::Plan*> plan_of(const Json& claims, const config::Config& config) {
  const auto found = claims.find("plan");
  if (found == claims.end() || !found->is_string()) {
    return fail(Errc::claim_mismatch, "token has no plan");
  }
  return plan_named(found->get_ref<const std::string&>(), config);
}

std::string subject_of(const Json& claims) {
  const auto sub = claims.find("sub");
  return sub != claims.end() && sub->is_string() ? sub->get<std::string>() : std::string{};
}

// `plan`'s limits for `subject`, with daily limit `limit`.
Result<Grant> plan_grant(const Json& claims, const config::Plan& plan, std::string subject,
                         std::optional<std::int64_t> limit) {
  if (subject.empty()) {
    return fail(Errc::claim_mismatch, "token has no subject (sub)");
  }
  return Grant{
      std::move(subject), plan.name, scopes_of(claims),   limit,         plan.models,
      plan.max_tokens,    plan.rpm,  plan.max_concurrent, plan.over_cap, plan.unbounded_input_reserve};
}

} // namespace

bool glob_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos; // position after the last '*' seen
  std::size_t resume = 0;                    // where in `text` that '*' will next try to match
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = ++p;
      resume = t;
    } else if (star != std::string_view::npos) {
      // Let the last '*' swallow one more character; earlier stars never need revisiting.
      p = star;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

Result<Grant> grant_for(const json::Json& claims, const config::Config& config) {
  if (!claims.is_object()) {
    return fail(Errc::claim_mismatch, "token claims are not an object");
  }
  const auto plan = plan_of(claims, config);
  if (!plan) {
    return propagate(plan);
  }
  const auto limit = limit_override(claims);
  if (!limit) {
    return propagate(limit);
  }
  return plan_grant(claims, **plan, subject_of(claims), *limit ? *limit : (*plan)->daily_token_limit);
}

Result<Grant> external_grant_for(const json::Json& claims, const config::Config& config,
                                 const std::string& plan_name, const std::string& issuer) {
  if (!claims.is_object()) {
    return fail(Errc::claim_mismatch, "token claims are not an object");
  }
  const auto plan = plan_named(plan_name, config);
  const auto limit = plan ? limit_override(claims) : propagate(plan);
  if (!limit) {
    return propagate(limit);
  }
  std::optional<std::int64_t> narrowed = (*plan)->daily_token_limit;
  if (*limit) {
    narrowed = narrowed ? std::min(*narrowed, **limit) : **limit;
  }
  const std::string sub = subject_of(claims);
  return plan_grant(claims, **plan, sub.empty() ? sub : issuer + "|" + sub, narrowed);
}

bool has_scope(const Grant& grant, std::string_view scope) {
  return std::find(grant.scopes.begin(), grant.scopes.end(), scope) != grant.scopes.end();
}

bool model_allowed(const Grant& grant, std::string_view model) {
  return std::any_of(grant.models.begin(), grant.models.end(),
                     [model](const std::string& pattern) { return glob_match(pattern, model); });
}

std::string allowed_models_text(const Grant& grant) {
  std::string text;
  for (const auto& pattern : grant.models) {
    text += (text.empty() ? "" : ", ") + pattern;
  }
  return text;
}

} // namespace claudegate::proxy
