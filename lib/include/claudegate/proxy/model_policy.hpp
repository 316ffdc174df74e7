// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/config.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace claudegate::proxy {

// True when `text` matches `pattern`, where * matches any run of characters
// and ? exactly one byte; case-sensitive, linear-time in practice (no
// exponential backtracking).
bool glob_match(std::string_view pattern, std::string_view text);

// What a verified token lets its subject do: its plan's limits with the
// token's own overrides applied.
struct Grant {
  std::string subject;
  std::string plan;
  std::vector<std::string> scopes;
  std::optional<std::int64_t> daily_token_limit; // nullopt = unlimited
  std::vector<std::string> models;               // glob patterns
  std::optional<std::int64_t> max_tokens;
  std::optional<std::int64_t> rpm;
  std::optional<std::int64_t> max_concurrent;
  config::OverCap over_cap = config::OverCap::clamp;
  std::optional<std::int64_t> unbounded_input_reserve; // nullopt = all that is left today
};

// The grant of verified `claims` under `config`: plan from claim "plan",
// scopes from "scope" (space-separated string or array; "scp" as IdPs send
// it when "scope" is absent), a "daily_token_limit" claim overriding the
// plan's. Fails with claim_mismatch when the plan is missing or unknown or
// daily_token_limit is not a non-negative integer.
Result<Grant> grant_for(const json::Json& claims, const config::Config& config);

// The grant of an external IdP's verified `claims` (serve-local --jwks):
// always plan `plan` of `config`, whatever "plan" the token names; a
// "daily_token_limit" claim may only lower the plan's limit; the subject is
// "`issuer`|sub", apart from local subjects of the same name. Fails as grant_for.
Result<Grant> external_grant_for(const json::Json& claims, const config::Config& config,
                                 const std::string& plan, const std::string& issuer);

// The models `grant` allows, as its glob list "a, b, c" for messages.
std::string allowed_models_text(const Grant& grant);

// True when `grant` carries `scope` exactly.
bool has_scope(const Grant& grant, std::string_view scope);

// True when some model glob of `grant` matches `model`.
bool model_allowed(const Grant& grant, std::string_view model);

} // namespace claudegate::proxy
