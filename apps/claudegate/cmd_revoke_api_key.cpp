// SPDX-License-Identifier: Apache-2.0
#include "cmd_revoke_api_key.hpp"

#include <claudegate/base/duration.hpp>
#include <claudegate/store/api_key.hpp>

#include <fmt/core.h>

namespace claudegate::app {

namespace {

std::string time_or_dash(std::optional<UnixSeconds> t) {
  return t ? duration::format_time(*t) : "-";
}

std::string text_or_dash(const json::Json& value) {
  return value.is_string() && !value.get<std::string>().empty() ? value.get<std::string>() : "-";
}

// The whole key given where its id belongs: refuse without revoking or echoing it.
Result<void> check_is_id(const std::string& id) {
  if (!api_key::looks_like_key(id)) {
    return {};
  }
  return fail(Errc::config, "--api-key takes the key's id (the part after cgk_ up to the next _, as revoke "
                            "--list shows it), not the key itself; nothing was revoked");
}

// The subject of key `id`, for the audit log ("" when unknown: revoke_api_key says so).
std::string subject_of(store::Store& store, const std::string& id) {
  auto found = store.find_api_key(id);
  return found && *found ? (*found)->subject : std::string{};
}

} // namespace

ExitCode revoke_api_key(const std::string& id, const std::string& reason, OutputFormat format, Context& ctx,
                        store::Store& store) {
  const UnixSeconds now = ctx.clock().now();
  auto checked = check_is_id(id);
  auto revoked = checked ? store.revoke_api_key(id, reason, now) : checked;
  if (!revoked) {
    return ctx.report(revoked.error(), format);
  }
  const json::Json detail = {{"kind", "api_key"}, {"key", id}, {"reason", reason}};
  if (auto audited = store.audit({now, "revoke", subject_of(store, id), detail.dump()}); !audited) {
    return ctx.report(audited.error(), format);
  }
  if (format == OutputFormat::json) {
    print_json({{"revoked", detail}}, format);
  } else {
    fmt::print("revoked api_key {}\n", id);
  }
  return ExitCode::success;
}

json::Json api_keys_json(const std::vector<store::ApiKeyRecord>& keys, UnixSeconds now) {
  json::Json out = json::Json::array();
  for (const auto& key : keys) {
    out.push_back(api_key::summary_json(key, now));
  }
  return out;
}

void print_api_keys(const std::vector<store::ApiKeyRecord>& keys, UnixSeconds now) {
  if (keys.empty()) {
    return;
  }
  constexpr auto row = "{:<16} {:<16} {:<20} {:<8} {:<20} {:<20} {:<20} {}\n";
  fmt::print("\n");
  fmt::print(row, "API KEY", "NAME", "SUBJECT", "PLAN", "CREATED", "EXPIRES", "LAST USED", "STATE");
  for (const auto& key : keys) {
    const auto summary = api_key::summary_json(key, now);
    const std::string state = summary["state"].get<std::string>();
    fmt::print(row, key.id, key.name.empty() ? "-" : key.name, key.subject, text_or_dash(summary["plan"]),
               duration::format_time(key.created_at), duration::format_time(key.expires_at),
               time_or_dash(key.last_used_at),
               state == "retiring" ? "retiring until " + duration::format_time(*key.retires_at) : state);
  }
}

} // namespace claudegate::app
