// SPDX-License-Identifier: Apache-2.0
#include "cmd_issue_api_key.hpp"

#include "options.hpp"

#include <claudegate/base/duration.hpp>
#include <claudegate/store/api_key.hpp>
#include <claudegate/store/grant.hpp>

#include <fmt/core.h>

namespace claudegate::app {

namespace {

// The key alone (text), or its summary with the key and its expiry in seconds (--json).
void print_key(const api_key::MintedKey& minted, const store::ApiKeyRecord& record, UnixSeconds now,
               OutputFormat format) {
  if (format == OutputFormat::text) {
    fmt::print("{}\n", minted.key);
    return;
  }
  json::Json out = {{"api_key", minted.key}};
  out.update(api_key::summary_json(record, now));
  out["expires_in"] = record.expires_at - now;
  print_json(out, format);
}

// A new key of `request` valid `ttl` seconds, named `name`; not stored yet.
Result<std::pair<api_key::MintedKey, store::ApiKeyRecord>>
new_key(const token::AccessTokenRequest& request, std::string name, std::int64_t ttl, Context& ctx) {
  auto minted = api_key::mint(ctx.random());
  auto record = api_key::new_record(minted, request, std::move(name), ttl, ctx.clock().now());
  if (!record) {
    return propagate(record);
  }
  return std::pair{std::move(minted), std::move(*record)};
}

// The key to rotate: known, and neither revoked, expired nor past an earlier overlap.
Result<store::ApiKeyRecord> rotatable(store::Store& store, const std::string& id, UnixSeconds now) {
  auto found = store.find_api_key(id);
  if (!found) {
    return propagate(found);
  }
  if (!*found) {
    return fail(Errc::claim_mismatch,
                fmt::format("unknown API key {}; `claudegate revoke --list` shows the keys", id));
  }
  if (auto usable = api_key::check_usable(**found, now); !usable) {
    return std::unexpected(Error{usable.error().code, usable.error().message
                                                          + "; it cannot be rotated, "
                                                            "issue a new key instead"});
  }
  return std::move(**found);
}

} // namespace

ExitCode mint_api_key(const ApiKeyOptions& opt, const token::AccessTokenRequest& request, std::int64_t ttl,
                      OutputFormat format, Context& ctx) {
  auto store = ctx.store();
  auto made = store ? new_key(request, opt.name.value_or(""), ttl, ctx) : propagate(store);
  auto stored = made ? (*store)->create_api_key(made->second) : propagate(made);
  if (!stored) {
    return ctx.report(stored.error(), format);
  }
  print_key(made->first, made->second, ctx.clock().now(), format);
  return ExitCode::success;
}

ExitCode rotate_api_key(const ApiKeyOptions& opt, std::optional<std::int64_t> ttl, OutputFormat format,
                        Context& ctx) {
  const UnixSeconds now = ctx.clock().now();
  auto store = ctx.store();
  auto old = store ? rotatable(**store, *opt.rotate, now) : propagate(store);
  auto request = old ? grant::from_json(old->grant, "API key " + old->id) : propagate(old);
  if (!request) {
    return ctx.report(request.error(), format);
  }
  auto made =
      new_key(*request, opt.name.value_or(old->name), ttl.value_or(old->expires_at - old->created_at), ctx);
  if (made) {
    made->second.rotated_from = old->id;
  }
  // One transaction: the new key is stored only with the old one's end set.
  auto rotated =
      made ? (*store)->rotate_api_key(made->second, now + seconds_of(opt.overlap)) : propagate(made);
  if (!rotated) {
    return ctx.report(rotated.error(), format);
  }
  print_key(made->first, made->second, now, format);
  return ExitCode::success;
}

void setup_api_key_options(CLI::App& cmd, ApiKeyOptions& opt) {
  auto* api_key = cmd.add_flag("--api-key", opt.enabled,
                               "mint a long-lived API key (cgk_…) for the grant instead of an access token, "
                               "shown once; --ttl is its lifetime (default 90d)");
  auto* name = cmd.add_option("--name", opt.name, "API key: a label that revoke --list shows");
  auto* rotate =
      cmd.add_option("--rotate", opt.rotate,
                     "API key: mint a new key with the grant of key ID; ID keeps working for --overlap");
  auto* overlap = cmd.add_option("--overlap", opt.overlap, "API key: how long a rotated key keeps working")
                      ->check(duration_validator())
                      ->capture_default_str();
  name->needs(api_key);
  rotate->needs(api_key);
  overlap->needs(rotate);
  for (const char* token_only : {"--refresh", "--refresh-token"}) {
    api_key->excludes(cmd.get_option(token_only));
  }
  // A rotation re-issues the old key's grant; it takes no new one.
  for (const char* grant :
       {"--sub", "--plan", "--scope", "--role", "--daily-token-limit", "--claim", "--aud", "--iss"}) {
    rotate->excludes(cmd.get_option(grant));
  }
}

} // namespace claudegate::app
