// SPDX-License-Identifier: Apache-2.0
#include "cmd_issue.hpp"

#include "cmd_issue_api_key.hpp"
#include "options.hpp"

#include <claudegate/base/duration.hpp>
#include <claudegate/jose/token.hpp>
#include <claudegate/store/refresh.hpp>

#include <fmt/core.h>

#include <memory>

namespace claudegate::app {

namespace {

struct IssueOptions {
  std::string subject;
  std::string plan = "free";
  std::string scope = "claude:messages";
  std::vector<std::string> roles;
  std::optional<std::int64_t> daily_token_limit;
  std::vector<std::string> claims; // "k=v"
  std::optional<std::string> ttl;
  std::optional<std::string> audience;
  std::optional<std::string> issuer;
  bool refresh = false;
  std::optional<std::string> refresh_token; // RT, or "-" for stdin
  ApiKeyOptions api_key;
  OutputFormat format = OutputFormat::text;
};

// `--claim k=v` pairs as a JSON object; v is JSON when it parses, else a string.
Result<json::Json> parse_claims(const std::vector<std::string>& pairs) {
  json::Json out = json::Json::object();
  for (const auto& pair : pairs) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return fail(Errc::config, fmt::format("--claim '{}' is not NAME=VALUE; e.g. --claim team=infra", pair));
    }
    const std::string name = pair.substr(0, eq);
    if (out.contains(name)) {
      return fail(Errc::config, fmt::format("--claim {} is given twice; keep one", name));
    }
    auto value = json::parse_value(std::string_view(pair).substr(eq + 1));
    out[name] = value ? *value : json::Json(pair.substr(eq + 1));
  }
  return out;
}

Result<std::int64_t> checked_ttl(const IssueOptions& opt, const config::Config& cfg) {
  const std::int64_t ttl = opt.ttl ? seconds_of(*opt.ttl) : cfg.access_ttl;
  if (ttl <= 0) {
    return fail(Errc::config, "--ttl must be positive, e.g. --ttl 15m");
  }
  if (ttl > cfg.max_access_ttl) {
    return fail(Errc::config,
                fmt::format("--ttl {} exceeds max_access_ttl {}; lower --ttl or raise max_access_ttl "
                            "in claudegate.toml",
                            duration::format(ttl), duration::format(cfg.max_access_ttl)));
  }
  return ttl;
}

Result<token::AccessTokenRequest> make_request(const IssueOptions& opt, const config::Config& cfg) {
  auto plan = cfg.plan(opt.plan);
  auto ttl = plan ? checked_ttl(opt, cfg) : propagate(plan);
  auto extra = ttl ? parse_claims(opt.claims) : propagate(ttl);
  if (!extra) {
    return propagate(extra);
  }
  token::AccessTokenRequest request;
  request.subject = opt.subject;
  request.plan = opt.plan;
  request.scope = opt.scope;
  request.roles = opt.roles;
  request.daily_token_limit = opt.daily_token_limit;
  request.extra_claims = std::move(*extra);
  request.ttl = *ttl;
  request.issuer = opt.issuer.value_or(cfg.issuer);
  request.audience = opt.audience.value_or(cfg.audience);
  return request;
}

json::Json access_json(const token::IssuedAccessToken& issued) {
  return {{"access_token", issued.token},
          {"token_type", "Bearer"},
          {"expires_in", issued.expires_at - issued.issued_at},
          {"jti", issued.jti},
          {"kid", issued.kid}};
}

void print_issued(const token::IssuedAccessToken& issued, OutputFormat format) {
  if (format == OutputFormat::text) {
    fmt::print("{}\n", issued.token);
  } else {
    print_json(access_json(issued), format);
  }
}

// Text form: the access token, then the refresh token, one per line.
void print_pair(const refresh::TokenPair& pair, UnixSeconds now, OutputFormat format) {
  if (format == OutputFormat::text) {
    fmt::print("{}\n{}\n", pair.access.token, pair.refresh_token);
    return;
  }
  auto out = access_json(pair.access);
  out["refresh_token"] = pair.refresh_token;
  out["refresh_expires_in"] = pair.refresh_expires_at - now;
  out["family_id"] = pair.family_id;
  print_json(out, format);
}

refresh::Lifetimes lifetimes_of(const config::Config& cfg) {
  return {cfg.refresh_ttl, cfg.family_ttl};
}

// Exchange a refresh token (argument or stdin) for a new pair in its family.
ExitCode rotate_refresh_token(const IssueOptions& opt, Context& ctx, const config::Config& cfg) {
  auto presented = token_argument(*opt.refresh_token);
  auto ring = presented ? ctx.keyring() : propagate(presented);
  auto signer = ring ? ring->signer() : propagate(ring);
  auto store = signer ? ctx.store() : propagate(signer);
  if (!store) {
    return ctx.report(store.error(), opt.format);
  }
  const UnixSeconds now = ctx.clock().now();
  auto pair = refresh::rotate(**store, *presented, **signer, lifetimes_of(cfg), now, ctx.random());
  if (!pair) {
    return ctx.report(pair.error(), opt.format);
  }
  print_pair(*pair, now, opt.format);
  return ExitCode::success;
}

ExitCode issue_access_token(const IssueOptions& opt, Context& ctx, const config::Config& cfg) {
  auto request = make_request(opt, cfg);
  auto ring = request ? ctx.keyring() : propagate(request);
  auto signer = ring ? ring->signer() : propagate(ring);
  if (!signer) {
    return ctx.report(signer.error(), opt.format);
  }
  const UnixSeconds now = ctx.clock().now();
  if (!opt.refresh) {
    auto issued = token::issue(*request, **signer, now, ctx.random());
    if (!issued) {
      return ctx.report(issued.error(), opt.format);
    }
    print_issued(*issued, opt.format);
    return ExitCode::success;
  }
  auto store = ctx.store();
  auto pair = store ? refresh::start_family(**store, *request, **signer, lifetimes_of(cfg), now, ctx.random())
                    : propagate(store);
  if (!pair) {
    return ctx.report(pair.error(), opt.format);
  }
  print_pair(*pair, now, opt.format);
  return ExitCode::success;
}

// `issue --api-key`: --ttl is the key's lifetime, not the grant's token lifetime.
ExitCode issue_api_key(const IssueOptions& opt, Context& ctx, const config::Config& cfg) {
  const auto ttl = opt.ttl ? std::optional<std::int64_t>(seconds_of(*opt.ttl)) : std::nullopt;
  if (opt.api_key.rotate) {
    return rotate_api_key(opt.api_key, ttl, opt.format, ctx);
  }
  IssueOptions grant = opt;
  grant.ttl.reset();
  auto request = make_request(grant, cfg);
  if (!request) {
    return ctx.report(request.error(), opt.format);
  }
  return mint_api_key(opt.api_key, *request, ttl.value_or(k_api_key_ttl), opt.format, ctx);
}

ExitCode run_issue(const IssueOptions& opt, Context& ctx) {
  auto cfg = ctx.config();
  if (!cfg) {
    return ctx.report(cfg.error(), opt.format);
  }
  if (opt.refresh_token) {
    return rotate_refresh_token(opt, ctx, **cfg);
  }
  if (opt.api_key.enabled && !opt.api_key.rotate && opt.subject.empty()) {
    return ctx.report({Errc::config, "--api-key needs --sub (or --rotate ID to rotate a key)"}, opt.format);
  }
  if (opt.api_key.enabled) {
    return issue_api_key(opt, ctx, **cfg);
  }
  if (opt.subject.empty()) {
    return ctx.report({Errc::config, "--sub is required (or --refresh-token RT to rotate a refresh token)"},
                      opt.format);
  }
  return issue_access_token(opt, ctx, **cfg);
}

} // namespace

void setup_issue(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<IssueOptions>();
  auto* cmd = app.add_subcommand("issue", "Mint a signed access token; prints it alone on stdout");
  cmd->add_option("--sub", opt->subject, "subject the token is for (a person, CI job or service)");
  cmd->add_option("--plan", opt->plan, "plan from the config (free, pro, admin, …)")->capture_default_str();
  cmd->add_option("--scope", opt->scope, "space-separated scopes")->capture_default_str();
  cmd->add_option("--role", opt->roles, "role claim (repeatable)")->allow_extra_args(false);
  cmd->add_option("--daily-token-limit", opt->daily_token_limit, "daily token quota overriding the plan's")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--claim", opt->claims,
                  "extra claim NAME=VALUE, VALUE parsed as JSON else string (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--ttl", opt->ttl, "lifetime, e.g. 15m (default access_ttl, at most max_access_ttl)")
      ->check(duration_validator());
  cmd->add_option("--aud", opt->audience, "audience (default from config: claude-proxy)");
  cmd->add_option("--iss", opt->issuer, "issuer (default from config: claudegate)");
  cmd->add_flag("--refresh", opt->refresh, "also create a refresh token in a new family");
  auto* rotate =
      cmd->add_option("--refresh-token", opt->refresh_token,
                      "rotate: exchange refresh token RT (or - for stdin) for a new pair in its family");
  // A rotation re-issues the family's grant; it takes no new claims.
  for (auto* option : cmd->get_options()) {
    if (option != rotate && option->get_name() != "--help") {
      rotate->excludes(option);
    }
  }
  setup_api_key_options(*cmd, opt->api_key);
  add_json_flag(*cmd, opt->format);
  cmd->callback([opt, &ctx] { ctx.set_exit(run_issue(*opt, ctx)); });
}

} // namespace claudegate::app
