// SPDX-License-Identifier: Apache-2.0
#include "cmd_revoke.hpp"

#include "cmd_revoke_api_key.hpp"
#include "options.hpp"

#include <claudegate/base/duration.hpp>
#include <claudegate/jose/jws.hpp>
#include <claudegate/store/api_key.hpp>
#include <claudegate/store/refresh.hpp>
#include <claudegate/store/revocation.hpp>

#include <fmt/core.h>

#include <memory>

namespace claudegate::app {

namespace {

struct RevokeOptions {
  std::optional<std::string> jti;
  std::optional<std::string> token; // TOKEN or "-"
  std::optional<std::string> subject;
  std::optional<std::string> family;
  std::optional<std::string> refresh_token; // RT or "-"
  std::optional<std::string> api_key;       // key id
  std::string reason;
  bool list = false;
  bool prune = false;
  OutputFormat format = OutputFormat::text;
};

// What one revoke call did, for the audit log and the output.
struct Revoked {
  store::RevocationKind kind;
  std::string key;
  std::optional<std::int64_t> families = std::nullopt; // --sub: refresh families stopped
};

Result<Revoked> revoke_token(store::Store& store, const std::string& argument, const std::string& reason,
                             UnixSeconds now) {
  auto token = token_argument(argument);
  // Decoded, not verified: revoking works even for expired tokens or retired keys.
  auto decoded = token ? jws::decode(*token) : propagate(token);
  if (!decoded) {
    return propagate(decoded);
  }
  const auto& claims = decoded->payload;
  if (!claims.contains("jti") || !claims["jti"].is_string() || claims["jti"].get<std::string>().empty()) {
    return fail(Errc::malformed, "the token has no jti to revoke; revoke its subject with --sub instead");
  }
  const auto jti = claims["jti"].get<std::string>();
  const auto exp = claims.contains("exp") && claims["exp"].is_number()
                       ? std::optional<UnixSeconds>(static_cast<UnixSeconds>(claims["exp"].get<double>()))
                       : std::nullopt;
  const auto sub =
      claims.contains("sub") && claims["sub"].is_string() ? claims["sub"].get<std::string>() : "";
  auto done = store.revoke_jti(jti, exp, sub, reason, now);
  if (!done) {
    return propagate(done);
  }
  return Revoked{store::RevocationKind::jti, jti};
}

Result<Revoked> revoke_refresh_family(store::Store& store, const std::string& argument,
                                      const std::string& reason, UnixSeconds now) {
  auto presented = token_argument(argument);
  auto shaped = presented ? refresh::check_format(*presented) : propagate(presented);
  auto token_hash = shaped ? refresh::hash(*presented) : propagate(shaped);
  auto family = token_hash ? store.family_of(*token_hash) : propagate(token_hash);
  if (!family) {
    return propagate(family);
  }
  if (!*family) {
    return fail(Errc::claim_mismatch, "unknown refresh token: no family in this store holds it");
  }
  auto done = store.revoke_family(**family, reason, now);
  if (!done) {
    return propagate(done);
  }
  return Revoked{store::RevocationKind::family, **family};
}

Result<Revoked> revoke_one(const RevokeOptions& opt, store::Store& store, UnixSeconds now) {
  using store::RevocationKind;
  const auto by_name = [&](revocation::Target target, RevocationKind kind, const std::string& key) {
    auto families = revocation::revoke(store, target, key, opt.reason, now);
    return families ? Result<Revoked>(
               Revoked{kind, key, kind == RevocationKind::subject ? std::optional(*families) : std::nullopt})
                    : propagate(families);
  };
  if (opt.jti) {
    return by_name(revocation::Target::jti, RevocationKind::jti, *opt.jti);
  }
  if (opt.subject) {
    return by_name(revocation::Target::subject, RevocationKind::subject, *opt.subject);
  }
  if (opt.family) {
    return by_name(revocation::Target::family, RevocationKind::family, *opt.family);
  }
  if (opt.token) {
    return revoke_token(store, *opt.token, opt.reason, now);
  }
  return revoke_refresh_family(store, *opt.refresh_token, opt.reason, now);
}

json::Json revocation_json(const store::Revocation& r) {
  json::Json out = {{"kind", store::revocation_kind_name(r.kind)},
                    {"key", r.key},
                    {"reason", r.reason},
                    {"revoked_at", duration::format_time(r.revoked_at)}};
  out["expires_at"] = r.expires_at ? json::Json(duration::format_time(*r.expires_at)) : json::Json(nullptr);
  return out;
}

ExitCode list_revocations(const RevokeOptions& opt, Context& ctx, store::Store& store) {
  auto rows = store.list_revocations();
  auto keys = rows ? store.list_api_keys() : propagate(rows);
  if (!keys) {
    return ctx.report(keys.error(), opt.format);
  }
  const UnixSeconds now = ctx.clock().now();
  if (opt.format == OutputFormat::json) {
    json::Json out = json::Json::array();
    for (const auto& r : *rows) {
      out.push_back(revocation_json(r));
    }
    print_json({{"revocations", out}, {"api_keys", api_keys_json(*keys, now)}}, opt.format);
    return ExitCode::success;
  }
  fmt::print("{:<8} {:<44} {:<21} {:<21} {}\n", "KIND", "KEY", "REVOKED", "EXPIRES", "REASON");
  for (const auto& r : *rows) {
    fmt::print("{:<8} {:<44} {:<21} {:<21} {}\n", store::revocation_kind_name(r.kind), r.key,
               duration::format_time(r.revoked_at), r.expires_at ? duration::format_time(*r.expires_at) : "-",
               r.reason);
  }
  print_api_keys(*keys, now);
  return ExitCode::success;
}

ExitCode prune_revocations(const RevokeOptions& opt, Context& ctx, store::Store& store) {
  auto cfg = ctx.config();
  auto pruned = cfg ? store.prune(ctx.clock().now(), (*cfg)->leeway) : propagate(cfg);
  if (!pruned) {
    return ctx.report(pruned.error(), opt.format);
  }
  if (opt.format == OutputFormat::json) {
    print_json({{"pruned", *pruned}}, opt.format);
  } else {
    fmt::print("pruned {} expired deny-list row{}\n", *pruned, *pruned == 1 ? "" : "s");
  }
  return ExitCode::success;
}

// A subject's cut-off covers its refresh families too: say how many it stopped.
void print_subject_cut(const Revoked& revoked, UnixSeconds cutoff) {
  const std::int64_t families = revoked.families.value_or(0);
  fmt::print("revoked subject {}: every token issued until {}; {} refresh famil{} stopped\n", revoked.key,
             duration::format_time(cutoff), families, families == 1 ? "y" : "ies");
}

ExitCode record_revocation(const RevokeOptions& opt, Context& ctx, store::Store& store) {
  const UnixSeconds now = ctx.clock().now();
  auto revoked = revoke_one(opt, store, now);
  if (!revoked) {
    return ctx.report(revoked.error(), opt.format);
  }
  const std::string kind(store::revocation_kind_name(revoked->kind));
  json::Json detail = {{"kind", kind}, {"key", revoked->key}, {"reason", opt.reason}};
  if (revoked->families) {
    detail["families"] = *revoked->families;
  }
  const std::string subject = revoked->kind == store::RevocationKind::subject ? revoked->key : "";
  if (auto audited = store.audit({now, "revoke", subject, detail.dump()}); !audited) {
    return ctx.report(audited.error(), opt.format);
  }
  if (opt.format == OutputFormat::json) {
    print_json({{"revoked", detail}}, opt.format);
  } else if (revoked->families) {
    print_subject_cut(*revoked, now);
  } else {
    fmt::print("revoked {} {}\n", kind, revoked->key);
  }
  return ExitCode::success;
}

ExitCode run_revoke(const RevokeOptions& opt, Context& ctx) {
  const int actions = (opt.jti ? 1 : 0) + (opt.token ? 1 : 0) + (opt.subject ? 1 : 0) + (opt.family ? 1 : 0)
                      + (opt.refresh_token ? 1 : 0) + (opt.api_key ? 1 : 0) + (opt.list ? 1 : 0)
                      + (opt.prune ? 1 : 0);
  if (actions != 1) {
    return ctx.report({Errc::config, "give exactly one of --jti, --token, --sub, --family, --refresh-token, "
                                     "--api-key, --list or --prune"},
                      opt.format);
  }
  auto store = ctx.store();
  if (!store) {
    return ctx.report(store.error(), opt.format);
  }
  if (opt.list) {
    return list_revocations(opt, ctx, **store);
  }
  if (opt.prune) {
    return prune_revocations(opt, ctx, **store);
  }
  if (opt.api_key) {
    return revoke_api_key(*opt.api_key, opt.reason, opt.format, ctx, **store);
  }
  return record_revocation(opt, ctx, **store);
}

} // namespace

void setup_revoke(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<RevokeOptions>();
  auto* cmd = app.add_subcommand(
      "revoke", "Revoke tokens by jti, token, subject or refresh family, or API keys; list or prune");
  cmd->add_option("--jti", opt->jti, "revoke the access token with this jti");
  cmd->add_option("--token", opt->token, "revoke this access token's jti (or - for stdin), even if expired");
  cmd->add_option("--sub", opt->subject,
                  "revoke every token of this subject issued until now, and stop its refresh families");
  cmd->add_option("--family", opt->family, "revoke this refresh family and the access tokens issued from it");
  cmd->add_option("--refresh-token", opt->refresh_token,
                  "revoke the family of this refresh token (or - for stdin)");
  cmd->add_option("--api-key", opt->api_key, "revoke the API key with this id (as revoke --list shows it)");
  cmd->add_option("--reason", opt->reason, "why, kept in the store and the audit log");
  cmd->add_flag("--list", opt->list, "list the revocations and the API keys (never their secrets)");
  cmd->add_flag("--prune", opt->prune, "drop deny-list rows whose tokens have expired past the leeway");
  add_json_flag(*cmd, opt->format);
  cmd->callback([opt, &ctx] { ctx.set_exit(run_revoke(*opt, ctx)); });
}

} // namespace claudegate::app
