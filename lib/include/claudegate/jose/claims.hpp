// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace claudegate::claims {

// What a verified token must satisfy besides its signature (DESIGN.md §4).
struct VerifyPolicy {
  std::optional<std::string> issuer;                    // exact match when set
  std::vector<std::string> audiences;                   // any-of, exact; empty = not checked
  std::int64_t leeway = 60;                             // seconds, for exp/nbf/iat
  std::optional<std::int64_t> max_lifetime = 24 * 3600; // exp − iat bound
  std::vector<std::string> required_claims;
  std::vector<std::string> required_scopes;                  // each must be in "scope"
  std::vector<std::string> allowed_typs = {"at+jwt", "JWT"}; // empty = not checked
  // Non-empty for an external IdP's tokens: the revocation check looks their
  // jti, sub and fid up as "<namespace>|<value>", apart from local ones.
  std::string revocation_namespace;
};

// Check header `typ` and `claims` against `policy` at `now`. exp is required,
// numeric and finite. Fails with expired ("expired 3m12s ago (leeway 60s)"),
// not_yet_valid, claim_mismatch (expected vs received) or malformed (a
// registered claim of the wrong type).
Result<void> check(std::string_view typ, const json::Json& claims, const VerifyPolicy& policy,
                   UnixSeconds now);

// The registered claim names an --claim may not override.
const std::vector<std::string>& registered_names();

// Split a space-separated scope string into its scopes.
std::vector<std::string> split_scope(std::string_view scope);

} // namespace claudegate::claims
