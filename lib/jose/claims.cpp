// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/claims.hpp"

#include "claudegate/base/duration.hpp"
#include "claudegate/base/text.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

namespace claudegate::claims {

namespace {

// 9999-12-31T23:59:59Z: anything later is garbage, not a real expiry.
constexpr double k_max_time = 253402300799.0;
using json::quote;

std::string quote_list(const std::vector<std::string>& values) {
  return quote(json::Json(values));
}

// The numeric time claim `name`, nullopt when absent. Fails with malformed
// on a non-number, NaN/infinity, a negative or an absurdly late value.
Result<std::optional<double>> time_claim(const json::Json& claims, const char* name) {
  const auto it = claims.find(name);
  if (it == claims.end()) {
    return std::nullopt;
  }
  if (!it->is_number()) {
    return fail(Errc::malformed,
                std::string("claim \"") + name + "\" must be a number of seconds, received " + quote(*it));
  }
  const double value = it->get<double>();
  if (!std::isfinite(value) || value < 0 || value > k_max_time) {
    return fail(Errc::malformed, std::string("claim \"") + name + "\" is not a sane time: " + quote(*it));
  }
  return value;
}

// Whole seconds of a time claim, for messages and duration arithmetic.
UnixSeconds whole(double t) {
  return static_cast<UnixSeconds>(std::floor(t));
}

// Seconds from `from` until `to`, rounded up so "not valid for another 0s" never shows.
std::int64_t seconds_until(UnixSeconds from, double to) {
  // Clamped: a pinned clock far in the past must not overflow the conversion.
  return static_cast<std::int64_t>(
      std::clamp(std::ceil(to - static_cast<double>(from)), 0.0, 2 * k_max_time));
}

bool is_string_array(const json::Json& value) {
  return value.is_array()
         && std::all_of(value.begin(), value.end(), [](const json::Json& v) { return v.is_string(); });
}

// The shape a registered claim must have, as a predicate and its description.
struct ClaimShape {
  const char* name;
  bool (*fits)(const json::Json&);
  const char* expected;
};

bool fits_string(const json::Json& v) {
  return v.is_string();
}
bool fits_audience(const json::Json& v) {
  return v.is_string() || is_string_array(v);
}
bool fits_string_array(const json::Json& v) {
  return is_string_array(v);
}
bool fits_count(const json::Json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0);
}

// Time claims are checked by time_claim; these are the other registered ones.
constexpr ClaimShape k_shapes[] = {
    {"iss", fits_string, "a string"},
    {"sub", fits_string, "a string"},
    {"aud", fits_audience, "a string or an array of strings"},
    {"jti", fits_string, "a string"},
    {"plan", fits_string, "a string"},
    {"scope", fits_string, "a space-separated string"},
    {"roles", fits_string_array, "an array of strings"},
    {"daily_token_limit", fits_count, "a non-negative integer"},
    {"fid", fits_string, "a string"},
};

Result<void> check_shapes(const json::Json& claims) {
  if (!claims.is_object()) {
    return fail(Errc::malformed, "claims must be a JSON object");
  }
  for (const auto& shape : k_shapes) {
    const auto it = claims.find(shape.name);
    if (it != claims.end() && !shape.fits(*it)) {
      return fail(Errc::malformed, std::string("claim \"") + shape.name + "\" must be " + shape.expected
                                       + ", received " + quote(*it));
    }
  }
  return {};
}

struct Times {
  double exp = 0;
  std::optional<double> nbf;
  std::optional<double> iat;
};

Result<Times> read_times(const json::Json& claims) {
  auto exp = time_claim(claims, "exp");
  if (!exp) {
    return propagate(exp);
  }
  if (!*exp) {
    return fail(Errc::claim_mismatch, "missing required claim \"exp\": every token must expire");
  }
  auto nbf = time_claim(claims, "nbf");
  if (!nbf) {
    return propagate(nbf);
  }
  auto iat = time_claim(claims, "iat");
  if (!iat) {
    return propagate(iat);
  }
  return Times{**exp, *nbf, *iat};
}

// Raw seconds, as operators configure it: "(leeway 60s)".
std::string leeway_note(std::int64_t leeway) {
  return "leeway " + std::to_string(leeway) + "s)";
}

Result<void> check_expiry(double exp, std::int64_t leeway, UnixSeconds now) {
  if (static_cast<double>(now) < exp + static_cast<double>(leeway)) {
    return {};
  }
  const auto ago = std::max<std::int64_t>(0, now - whole(exp));
  return fail(Errc::expired, "token expired " + duration::format(ago) + " ago at "
                                 + duration::format_time(whole(exp)) + " (" + leeway_note(leeway));
}

// nbf and iat share the rule: not later than now + leeway.
Result<void> check_not_future(const char* name, std::optional<double> t, std::int64_t leeway,
                              UnixSeconds now) {
  if (!t || *t <= static_cast<double>(now) + static_cast<double>(leeway)) {
    return {};
  }
  const auto wait = seconds_until(now, *t);
  return fail(Errc::not_yet_valid, "token not valid for another " + duration::format(wait) + " (" + name + " "
                                       + duration::format_time(whole(*t)) + ", " + leeway_note(leeway));
}

// A token without iat is bounded by its remaining life, so it cannot dodge the limit.
Result<void> check_lifetime(const Times& times, const VerifyPolicy& policy, UnixSeconds now) {
  if (!policy.max_lifetime) {
    return {};
  }
  const auto limit = static_cast<double>(*policy.max_lifetime);
  const auto limit_text = duration::format(*policy.max_lifetime);
  if (times.iat && times.exp - *times.iat > limit) {
    const auto life = whole(times.exp - *times.iat);
    return fail(Errc::claim_mismatch, "token lifetime " + duration::format(life)
                                          + " (iat to exp) exceeds the maximum " + limit_text);
  }
  if (!times.iat && times.exp - static_cast<double>(now) > limit + static_cast<double>(policy.leeway)) {
    const auto left = seconds_until(now, times.exp);
    return fail(Errc::claim_mismatch, "token without iat expires in " + duration::format(left)
                                          + ", beyond the maximum lifetime " + limit_text);
  }
  return {};
}

Result<void> check_times(const json::Json& claims, const VerifyPolicy& policy, UnixSeconds now) {
  const auto times = read_times(claims);
  if (!times) {
    return propagate(times);
  }
  if (auto r = check_expiry(times->exp, policy.leeway, now); !r) {
    return r;
  }
  if (auto r = check_not_future("nbf", times->nbf, policy.leeway, now); !r) {
    return r;
  }
  if (auto r = check_not_future("iat", times->iat, policy.leeway, now); !r) {
    return r;
  }
  return check_lifetime(*times, policy, now);
}

Result<void> check_issuer(const json::Json& claims, const VerifyPolicy& policy) {
  if (!policy.issuer) {
    return {};
  }
  const auto it = claims.find("iss");
  if (it == claims.end()) {
    return fail(Errc::claim_mismatch,
                "issuer mismatch: expected " + quote(*policy.issuer) + ", token has no iss");
  }
  if (it->get_ref<const std::string&>() != *policy.issuer) {
    return fail(Errc::claim_mismatch,
                "issuer mismatch: expected " + quote(*policy.issuer) + ", received " + quote(*it));
  }
  return {};
}

bool audience_matches(const json::Json& aud, const std::vector<std::string>& expected) {
  const auto wanted = [&](const json::Json& v) {
    return std::find(expected.begin(), expected.end(), v.get_ref<const std::string&>()) != expected.end();
  };
  if (aud.is_string()) {
    return wanted(aud);
  }
  return std::any_of(aud.begin(), aud.end(), wanted);
}

Result<void> check_audience(const json::Json& claims, const VerifyPolicy& policy) {
  if (policy.audiences.empty()) {
    return {};
  }
  const auto expected = "expected one of " + quote_list(policy.audiences);
  const auto it = claims.find("aud");
  if (it == claims.end()) {
    return fail(Errc::claim_mismatch, "audience mismatch: " + expected + ", token has no aud");
  }
  if (!audience_matches(*it, policy.audiences)) {
    return fail(Errc::claim_mismatch, "audience mismatch: " + expected + ", received " + quote(*it));
  }
  return {};
}

Result<void> check_typ(std::string_view typ, const VerifyPolicy& policy) {
  const auto& allowed = policy.allowed_typs;
  if (allowed.empty() || std::find(allowed.begin(), allowed.end(), typ) != allowed.end()) {
    return {};
  }
  const auto received = typ.empty() ? std::string("no typ") : quote(std::string(typ));
  return fail(Errc::claim_mismatch,
              "token type mismatch: expected one of " + quote_list(allowed) + ", received " + received);
}

Result<void> check_required(const json::Json& claims, const VerifyPolicy& policy) {
  for (const auto& name : policy.required_claims) {
    if (!claims.contains(name)) {
      return fail(Errc::claim_mismatch, "missing required claim " + quote(name));
    }
  }
  return {};
}

Result<void> check_scopes(const json::Json& claims, const VerifyPolicy& policy) {
  if (policy.required_scopes.empty()) {
    return {};
  }
  const auto it = claims.find("scope");
  const std::string scope = it == claims.end() ? std::string() : it->get<std::string>();
  const auto granted = split_scope(scope);
  for (const auto& wanted : policy.required_scopes) {
    if (std::find(granted.begin(), granted.end(), wanted) == granted.end()) {
      return fail(Errc::claim_mismatch,
                  "missing scope " + quote(wanted) + "; token scope is " + quote(scope));
    }
  }
  return {};
}

} // namespace

Result<void> check(std::string_view typ, const json::Json& claims, const VerifyPolicy& policy,
                   UnixSeconds now) {
  if (policy.leeway < 0) {
    return fail(Errc::config, "leeway must not be negative, got " + std::to_string(policy.leeway) + "s");
  }
  // Shapes first, so every later check can rely on the types.
  if (auto r = check_shapes(claims); !r) {
    return r;
  }
  if (auto r = check_times(claims, policy, now); !r) {
    return r;
  }
  if (auto r = check_issuer(claims, policy); !r) {
    return r;
  }
  if (auto r = check_audience(claims, policy); !r) {
    return r;
  }
  if (auto r = check_typ(typ, policy); !r) {
    return r;
  }
  if (auto r = check_required(claims, policy); !r) {
    return r;
  }
  return check_scopes(claims, policy);
}

// RFC 7519 §4.1 registered claims plus claudegate's own, whose meaning the
// gateway relies on (quota, scope, refresh family): none may come from --claim.
const std::vector<std::string>& registered_names() {
  static const std::vector<std::string> k_names = {
      "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "plan", "scope", "roles", "daily_token_limit", "fid"};
  return k_names;
}

std::vector<std::string> split_scope(std::string_view scope) {
  const auto items = text::words(scope);
  return {items.begin(), items.end()};
}

} // namespace claudegate::claims
