// SPDX-License-Identifier: Apache-2.0
#include "cmd_verify.hpp"

#include "options.hpp"

#include <claudegate/duration.hpp>
#include <claudegate/fs.hpp>
#include <claudegate/jwks.hpp>
#include <claudegate/jwks_remote.hpp>
#include <claudegate/jws.hpp>
#include <claudegate/revocation.hpp>
#include <claudegate/token.hpp>

#include <fmt/core.h>

#include <iostream>
#include <memory>

namespace claudegate::app {

namespace {

struct VerifyOptions {
  std::string token;
  bool batch = false;
  std::string jwks;
  std::optional<std::string> issuer;
  std::vector<std::string> audiences;
  std::optional<std::string> leeway;
  std::vector<std::string> required_claims;
  std::vector<std::string> scopes;
  std::optional<std::string> at;
  bool no_revocation = false;
  OutputFormat format = OutputFormat::text;
};

// A JWKS file may carry HS256 secrets only when nobody else can read it.
Result<KeySet> keys_from_jwks_file(const std::string& path) {
  auto private_text = fs::read_private(path);
  if (private_text) {
    return jwks::parse(*private_text, jwks::AllowSymmetric::yes);
  }
  auto text = fs::read(path, 4 * 1024 * 1024);
  if (!text) {
    return std::unexpected(text.error());
  }
  return jwks::parse(*text, jwks::AllowSymmetric::no);
}

Result<KeySet> keyring_keys(Context& ctx) {
  auto ring = ctx.keyring();
  if (!ring) {
    return std::unexpected(ring.error());
  }
  if (ring->verification_keys().empty()) {
    return fail(Errc::config, "no verification keys in the keyring; run: claudegate keygen "
                              "(or pass --jwks FILE|URL)");
  }
  return ring->verification_keys();
}

bool is_url(std::string_view jwks) {
  return jwks.starts_with("http://") || jwks.starts_with("https://");
}

// Where verify takes its keys: one fixed set (the keyring or a JWKS file),
// or an IdP's JWKS URL looked up per token by kid (each run is one process,
// so fetched documents are cached under the home's cache/jwks/).
class KeySource {
public:
  static Result<KeySource> open(const VerifyOptions& opt, Context& ctx) {
    KeySource source;
    if (is_url(opt.jwks)) {
      return source.open_remote(opt.jwks, ctx);
    }
    auto keys = opt.jwks.empty() ? keyring_keys(ctx) : keys_from_jwks_file(opt.jwks);
    if (!keys) {
      return std::unexpected(keys.error());
    }
    source.m_fixed = std::make_shared<const KeySet>(std::move(*keys));
    return source;
  }

  // The keys for `token`: a remote set is (re)fetched as its kid needs.
  Result<std::shared_ptr<const KeySet>> for_token(std::string_view token) {
    if (!m_remote) {
      return m_fixed;
    }
    const auto decoded = jws::decode(token); // a malformed token fails in token::verify
    return m_remote->keys_for(decoded ? decoded->kid : std::string{});
  }

private:
  Result<KeySource> open_remote(const std::string& url, Context& ctx) {
    if (auto paths = ctx.paths()) {
      m_disk = std::make_unique<jwks_remote::DiskCache>(paths->home / "cache" / "jwks");
    }
    auto remote = jwks_remote::RemoteKeySet::open(url, ctx.clock(), {}, {}, m_disk.get());
    if (!remote) {
      return std::unexpected(remote.error());
    }
    m_remote = std::move(*remote);
    return std::move(*this);
  }

  std::shared_ptr<const KeySet> m_fixed;
  std::unique_ptr<jwks_remote::DiskCache> m_disk;
  std::unique_ptr<jwks_remote::RemoteKeySet> m_remote;
};

claims::VerifyPolicy make_policy(const VerifyOptions& opt, const config::Config& cfg) {
  claims::VerifyPolicy policy;
  policy.issuer = opt.issuer.value_or(cfg.issuer);
  policy.audiences = opt.audiences.empty() ? std::vector<std::string>{cfg.audience} : opt.audiences;
  policy.leeway = opt.leeway ? seconds_of(*opt.leeway) : cfg.leeway;
  policy.max_lifetime = cfg.max_access_ttl;
  policy.required_claims = opt.required_claims;
  policy.required_scopes = opt.scopes;
  return policy;
}

// Signature and claims first; only a token that passed them reaches the store.
class TokenChecker {
public:
  TokenChecker(const VerifyOptions& opt, Context& ctx, KeySource& keys, claims::VerifyPolicy policy,
               UnixSeconds now)
      : m_opt(opt), m_ctx(ctx), m_keys(keys), m_policy(std::move(policy)), m_now(now) {}

  Result<token::VerifiedToken> check(std::string_view token) {
    const auto keys = m_keys.for_token(token);
    if (!keys) {
      return std::unexpected(keys.error());
    }
    if (m_opt.no_revocation) {
      return token::verify(token, **keys, m_policy, m_now);
    }
    return revocation::verify_unrevoked(token, **keys, m_policy, m_now,
                                        [this] { return revocation_store(); });
  }

private:
  // No store file yet means nothing was ever revoked: do not create one just to read it.
  Result<store::Store*> revocation_store() {
    auto paths = m_ctx.paths();
    if (!paths) {
      return std::unexpected(paths.error());
    }
    std::error_code ec;
    if (!std::filesystem::exists(paths->db, ec)) {
      return nullptr;
    }
    return m_ctx.store();
  }

  const VerifyOptions& m_opt;
  Context& m_ctx;
  KeySource& m_keys;
  claims::VerifyPolicy m_policy;
  UnixSeconds m_now;
};

json::Json result_json(const Result<token::VerifiedToken>& verified) {
  if (!verified) {
    return {
        {"valid", false}, {"code", errc_code(verified.error().code)}, {"error", verified.error().message}};
  }
  return {{"valid", true},
          {"kid", verified->kid},
          {"alg", alg_name(verified->alg)},
          {"claims", verified->claims}};
}

// Verifies one token per stdin line, one JSON result per line, in order;
// exits with the status of the first failure.
ExitCode verify_batch(TokenChecker& checker) {
  std::optional<ExitCode> first_failure;
  // Nothing has read std::cin yet: unsynchronised from stdio it reads in
  // blocks instead of a character at a time (a fifth of the batch's CPU).
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    auto verified = checker.check(line);
    if (!verified && !first_failure) {
      first_failure = exit_code_for(verified.error().code);
    }
    fmt::print("{}\n", result_json(verified).dump());
  }
  return first_failure.value_or(ExitCode::success);
}

ExitCode verify_one(const VerifyOptions& opt, Context& ctx, TokenChecker& checker) {
  auto token = token_argument(opt.token);
  if (!token) {
    return ctx.report(token.error(), opt.format);
  }
  auto verified = checker.check(*token);
  if (opt.format == OutputFormat::json) {
    print_json(result_json(verified), opt.format);
    return verified ? ExitCode::success : exit_code_for(verified.error().code);
  }
  if (!verified) {
    return ctx.report(verified.error());
  }
  print_json(verified->claims, opt.format);
  return ExitCode::success;
}

ExitCode run_verify(const VerifyOptions& opt, Context& ctx) {
  auto cfg = ctx.config();
  auto keys = cfg ? KeySource::open(opt, ctx) : std::unexpected(cfg.error());
  if (!keys) {
    return ctx.report(keys.error(), opt.format);
  }
  const UnixSeconds now = opt.at ? duration::parse_time(*opt.at).value_or(0) : ctx.clock().now();
  TokenChecker checker(opt, ctx, *keys, make_policy(opt, **cfg), now);
  if (opt.batch) {
    return verify_batch(checker);
  }
  return verify_one(opt, ctx, checker);
}

} // namespace

void setup_verify(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<VerifyOptions>();
  auto* cmd =
      app.add_subcommand("verify", "Verify a token: signature, expiry, issuer, audience; prints its claims");
  auto* token = cmd->add_option("token", opt->token, "the token, or - to read it from stdin");
  cmd->add_flag("--batch", opt->batch, "verify one token per stdin line; one JSON result per line")
      ->excludes(token);
  cmd->add_option("--jwks", opt->jwks,
                  "verify with the keys of this JWKS file or https:// URL (an IdP's; cached, refetched "
                  "for an unknown kid at most every 30s) instead of the keyring");
  cmd->add_option("--iss", opt->issuer, "required issuer (default from config: claudegate)");
  cmd->add_option("--aud", opt->audiences, "accepted audience (repeatable, any-of; default from config)")
      ->allow_extra_args(false);
  cmd->add_option("--leeway", opt->leeway, "clock skew allowed for exp/nbf/iat (default 60s)")
      ->check(duration_validator());
  cmd->add_option("--require", opt->required_claims, "claim that must be present (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--scope", opt->scopes, "scope the token must carry (repeatable)")->allow_extra_args(false);
  cmd->add_option("--at", opt->at, "verify as of this time (Unix seconds or RFC 3339)")
      ->check(time_validator());
  cmd->add_flag("--no-revocation", opt->no_revocation, "skip the store's revocation checks (offline checks)");
  add_json_flag(*cmd, opt->format);
  cmd->callback([opt, &ctx] { ctx.set_exit(run_verify(*opt, ctx)); });
}

} // namespace claudegate::app
