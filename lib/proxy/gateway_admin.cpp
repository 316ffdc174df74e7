// SPDX-License-Identifier: Apache-2.0
// The admin side of the gateway: GET /admin/usage, POST /admin/revoke,
// GET /admin/keys and /metrics when guarded. A route reached by the roles the access policy
// names; never metered as model usage, never forwarded, counted in rpm.
#include "gateway.hpp"

#include "claudegate/store/api_key.hpp"
#include "claudegate/store/report.hpp"
#include "claudegate/store/report_query.hpp"
#include "claudegate/store/revocation.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <array>

namespace claudegate::proxy {

// What POST /admin/revoke asks: one kind of revocation, its key and a reason.
struct AdminRevocation {
  std::string kind; // one of k_revoke_kinds
  std::string key;
  std::string reason;
};

namespace {

constexpr std::array<std::string_view, 5> k_usage_parameters = {"since", "until", "sub", "model", "by"};
constexpr std::array<std::string_view, 4> k_revoke_kinds = {"jti", "sub", "family", "api_key"};

Rejection admin_bad_request(std::string message) {
  return {400, "invalid_request_error", std::move(message)};
}

Rejection admin_store_failed(const Error& error, std::string_view what) {
  Rejection failed{500, "api_error", fmt::format("the gateway could not {}; try again", what)};
  failed.cause = error.message;
  return failed;
}

// The roles of a local token's "roles" claim; an external IdP's tokens have
// none here, as its claims may narrow a grant, never widen it.
std::vector<std::string> caller_roles(const Caller& caller) {
  std::vector<std::string> roles;
  const auto& claims = caller.token.claims;
  const auto it = claims.find("roles");
  if (caller.idp != nullptr || it == claims.end() || !it->is_array()) {
    return roles;
  }
  for (const auto& role : *it) {
    if (role.is_string()) {
      roles.push_back(role.get<std::string>());
    }
  }
  return roles;
}

// The query parameter `name` once, if given; fails when it is given twice.
Checked<std::optional<std::string>> single_parameter(const Request& req, std::string_view name) {
  const std::string key(name);
  const auto count = req.param_count(key);
  if (count > 1) {
    return std::unexpected(
        admin_bad_request(fmt::format("{}: query parameter given {} times; give it once", name, count)));
  }
  return count == 1 ? std::optional<std::string>(req.param(key)) : std::nullopt;
}

// usage-report's filters from the query parameters; any other parameter is refused.
Checked<report::Filters> usage_filters(const Request& req) {
  for (const auto& [name, value] : req.params) {
    if (std::find(k_usage_parameters.begin(), k_usage_parameters.end(), name) == k_usage_parameters.end()) {
      return std::unexpected(
          admin_bad_request(fmt::format("{}: unknown query parameter; GET /admin/usage takes {}",
                                        json::quote(name), fmt::join(k_usage_parameters, ", "))));
    }
  }
  std::array<std::optional<std::string>, k_usage_parameters.size()> values;
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto value = single_parameter(req, k_usage_parameters[i]);
    if (!value) {
      return propagate(value);
    }
    values[i] = std::move(*value);
  }
  return report::Filters{values[0], values[1], values[2], values[3], values[4].value_or("")};
}

Checked<std::string> string_member(const json::Json& body, std::string_view name) {
  const auto& value = body.at(std::string(name));
  if (!value.is_string() || value.get<std::string>().empty()) {
    return std::unexpected(admin_bad_request(fmt::format("{}: must be a non-empty string", name)));
  }
  return value.get<std::string>();
}

Checked<AdminRevocation> revoke_request(const std::string& text) {
  const std::string usage =
      R"(give a JSON object with one of "jti", "sub", "family" or "api_key", and optionally "reason")";
  auto body = json::parse_object(text);
  if (!body) {
    return std::unexpected(admin_bad_request(fmt::format("{}; {}", body.error().message, usage)));
  }
  AdminRevocation request;
  for (const auto& [name, value] : body->items()) {
    const bool kind = std::find(k_revoke_kinds.begin(), k_revoke_kinds.end(), name) != k_revoke_kinds.end();
    if (!kind && name != "reason") {
      return std::unexpected(
          admin_bad_request(fmt::format("{}: unknown member; {}", json::quote(name), usage)));
    }
    auto member = string_member(*body, name);
    if (!member) {
      return propagate(member);
    }
    if (kind && !request.kind.empty()) {
      return std::unexpected(
          admin_bad_request(fmt::format("both {} and {} given; {}", request.kind, name, usage)));
    }
    (kind ? request.key : request.reason) = std::move(*member);
    request.kind = kind ? name : request.kind;
  }
  if (request.kind.empty()) {
    return std::unexpected(admin_bad_request(fmt::format("nothing to revoke; {}", usage)));
  }
  return request;
}

} // namespace

// Authenticate, check the caller's roles for the route and take an rpm
// slot; then `reply` answers, and the slot is given back.
// The caller of guarded route req.path, named in `call`: authenticated
// (401) and holding a role the access policy wants for the route (403).
Checked<Caller> Gateway::authorize_route(const Request& req, CallRecord& call) {
  auto caller = authenticate(req);
  if (!caller) {
    return caller;
  }
  call.subject = caller->grant.subject;
  call.jti = caller->jti;
  if (auto refused = m_access.refusal(req.path, caller_roles(*caller)); refused) {
    return std::unexpected(Rejection{403, "permission_error", std::move(*refused)});
  }
  return caller;
}

void Gateway::serve_guarded(const Request& req, Response& res, const GuardedReply& reply) {
  CallRecord call = begin(req);
  auto caller = authorize_route(req, call);
  auto slot = caller ? take_slot(caller->grant) : propagate(caller);
  if (!slot) {
    reject(res, call, slot.error());
  } else {
    call.status = 200;
    reply(req, res, call, *caller);
    m_limiter.release(caller->grant.subject);
  }
  finish(call);
}

void Gateway::admin_usage(const Request& req, Response& res) {
  serve_guarded(req, res,
                [this](const auto& r, auto& s, auto& call, const Caller&) { usage_reply(r, s, call); });
}

void Gateway::admin_revoke(const Request& req, Response& res) {
  serve_guarded(req, res, [this](const auto& r, auto& s, auto& call, const Caller& caller) {
    revoke_reply(r, s, call, caller);
  });
}

void Gateway::admin_keys(const Request& req, Response& res) {
  serve_guarded(req, res, [this](const auto&, auto& s, auto& call, const Caller&) { keys_reply(s, call); });
}

// Every API key as `revoke --list` shows it, never a secret or its hash.
void Gateway::keys_reply(Response& res, CallRecord& call) {
  auto keys = m_parts.store.list_api_keys();
  if (!keys) {
    reject(res, call, admin_store_failed(keys.error(), "list the API keys"));
    return;
  }
  const UnixSeconds now = m_parts.clock.now();
  json::Json listed = json::Json::array();
  for (const auto& key : *keys) {
    listed.push_back(api_key::summary_json(key, now));
  }
  res.set_header("Cache-Control", "no-store");
  res.set_content(json::Json{{"api_keys", std::move(listed)}}.dump(), "application/json");
}

void Gateway::usage_reply(const Request& req, Response& res, CallRecord& call) {
  const UnixSeconds now = m_parts.clock.now();
  auto filters = usage_filters(req);
  auto query =
      filters ? report::make_query(*filters, now, "") : Result<store::UsageQuery>(store::UsageQuery{});
  if (!filters || !query) {
    reject(res, call, filters ? admin_bad_request(query.error().message) : filters.error());
    return;
  }
  auto rows = m_parts.store.usage(*query);
  auto quotas = rows ? report::quotas_for(m_parts.store, *query, now) : propagate(rows);
  if (!quotas) {
    reject(res, call, admin_store_failed(quotas.error(), "read the usage ledger"));
    return;
  }
  report::Options options;
  options.group_by = query->group_by;
  options.format = report::Format::json;
  options.since = query->since;
  options.until = query->until;
  res.set_header("Cache-Control", "no-store");
  res.set_content(report::render(*rows, options, *quotas), "application/json");
}

// Record `request` as `claudegate revoke` does, audited with the caller who asked.
Checked<json::Json> Gateway::record_revocation(const AdminRevocation& request, const Caller& caller) {
  const UnixSeconds now = m_parts.clock.now();
  json::Json detail = {{"kind", request.kind == "sub" ? "subject" : request.kind},
                       {"key", request.key},
                       {"reason", request.reason}};
  const auto target = request.kind == "jti"      ? revocation::Target::jti
                      : request.kind == "sub"    ? revocation::Target::subject
                      : request.kind == "family" ? revocation::Target::family
                                                 : revocation::Target::api_key;
  auto families = revocation::revoke(m_parts.store, target, request.key, request.reason, now);
  if (!families && families.error().code == Errc::claim_mismatch) { // no such family or key
    return std::unexpected(Rejection{404, "not_found_error", families.error().message});
  }
  if (families && target == revocation::Target::subject) {
    detail["families"] = *families;
  }
  auto audited =
      families ? m_parts.store.audit({now, "revoke", request.kind == "sub" ? request.key : "",
                                      json::Json{{"by", caller.grant.subject}, {"revoked", detail}}.dump()})
               : Result<void>(propagate(families));
  if (!audited) {
    return std::unexpected(admin_store_failed(audited.error(), "record the revocation"));
  }
  return detail;
}

void Gateway::revoke_reply(const Request& req, Response& res, CallRecord& call, const Caller& caller) {
  auto request = revoke_request(req.body);
  auto detail = request ? record_revocation(*request, caller) : propagate(request);
  if (!detail) {
    reject(res, call, detail.error());
    return;
  }
  revocation_written();
  res.set_header("Cache-Control", "no-store");
  res.set_content(json::Json{{"revoked", *detail}}.dump(), "application/json");
}

} // namespace claudegate::proxy
