// SPDX-License-Identifier: Apache-2.0
#include "cmd_issue.hpp"

#include "options.hpp"

#include <claudegate/duration.hpp>
#include <claudegate/token.hpp>

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
  auto ttl = plan ? checked_ttl(opt, cfg) : std::unexpected(plan.error());
  auto extra = ttl ? parse_claims(opt.claims) : std::unexpected(ttl.error());
  if (!extra) {
    return std::unexpected(extra.error());
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

void print_issued(const token::IssuedAccessToken& issued, OutputFormat format) {
  if (format == OutputFormat::text) {
    fmt::print("{}\n", issued.token);
    return;
  }
  print_json({{"access_token", issued.token},
              {"token_type", "Bearer"},
              {"expires_in", issued.expires_at - issued.issued_at},
              {"jti", issued.jti},
              {"kid", issued.kid}},
             format);
}

ExitCode run_issue(const IssueOptions& opt, Context& ctx) {
  auto cfg = ctx.config();
  auto request = cfg ? make_request(opt, **cfg) : std::unexpected(cfg.error());
  auto ring = request ? ctx.keyring() : std::unexpected(request.error());
  auto signer = ring ? ring->signer() : std::unexpected(ring.error());
  if (!signer) {
    return ctx.report(signer.error(), opt.format);
  }
  auto issued = token::issue(*request, **signer, ctx.clock().now(), ctx.random());
  if (!issued) {
    return ctx.report(issued.error(), opt.format);
  }
  print_issued(*issued, opt.format);
  return ExitCode::success;
}

} // namespace

void setup_issue(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<IssueOptions>();
  auto* cmd = app.add_subcommand("issue", "Mint a signed access token; prints it alone on stdout");
  cmd->add_option("--sub", opt->subject, "subject the token is for (a person, CI job or service)")
      ->required();
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
  add_json_flag(*cmd, opt->format);
  cmd->callback([opt, &ctx] { ctx.set_exit(run_issue(*opt, ctx)); });
}

} // namespace claudegate::app
