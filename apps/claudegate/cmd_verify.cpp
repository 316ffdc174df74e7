// SPDX-License-Identifier: Apache-2.0
#include "cmd_verify.hpp"

#include "options.hpp"

#include <claudegate/base/duration.hpp>
#include <claudegate/jose/jwks.hpp>
#include <claudegate/jose/jwks_remote.hpp>
#include <claudegate/store/batch_verify.hpp>

#include <cstdio>
#include <memory>
#include <thread>
#include <unistd.h>

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

Result<keyset::KeySet> keyring_keys(Context& ctx) {
  auto ring = ctx.keyring();
  if (!ring) {
    return propagate(ring);
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

// Where verify takes its keys: the keyring, a JWKS file, or an IdP's JWKS
// URL looked up per token by kid (each run is one process, so fetched
// documents are cached under the home's cache/jwks/).
Result<batch_verify::KeySource> open_keys(const VerifyOptions& opt, Context& ctx) {
  if (is_url(opt.jwks)) {
    std::unique_ptr<jwks_remote::DiskCache> disk;
    if (auto paths = ctx.paths()) {
      disk = std::make_unique<jwks_remote::DiskCache>(paths->home / "cache" / "jwks");
    }
    auto remote = jwks_remote::RemoteKeySet::open(opt.jwks, ctx.clock(), {}, {}, disk.get());
    if (!remote) {
      return propagate(remote);
    }
    return batch_verify::KeySource(std::move(*remote), std::move(disk));
  }
  auto keys = opt.jwks.empty() ? keyring_keys(ctx) : jwks::load_file(opt.jwks);
  if (!keys) {
    return propagate(keys);
  }
  return batch_verify::KeySource(std::make_shared<const keyset::KeySet>(std::move(*keys)));
}

claims::VerifyPolicy make_policy(const VerifyOptions& opt, const config::Config& cfg) {
  claims::VerifyPolicy policy;
  policy.issuer = opt.issuer.value_or(cfg.issuer);
  policy.audiences = opt.audiences.empty() ? std::vector<std::string>{cfg.audience} : opt.audiences;
  policy.leeway = opt.leeway ? seconds_of(*opt.leeway) : cfg.leeway;
  policy.max_lifetime = cfg.max_access_ttl;
  policy.required_claims = opt.required_claims;
  policy.required_scopes = opt.scopes;
  // An external IdP's tokens (--jwks URL, another issuer) have their
  // revocations under "ISS|…", as serve-local keeps them apart from local subjects.
  if (is_url(opt.jwks) && policy.issuer != cfg.issuer) {
    policy.revocation_namespace = *policy.issuer;
  }
  return policy;
}

// The store for the revocation checks, opened by each thread on its first
// use; no SQLite file yet means nothing was ever revoked. The location is
// read here, once, not by the threads (the context is not theirs to share);
// an error in it is reported only if a thread needs the store.
batch_verify::StoreOpener store_opener(Context& ctx) {
  return [location = ctx.store_location()]() -> Result<std::unique_ptr<store::Store>> {
    if (!location) {
      return propagate(location);
    }
    return batch_verify::open_existing(*location);
  };
}

// One token per stdin line, one JSON result per line on stdout, on every
// core when the keys are fixed. Exits with the status of the first refused
// line, or failure (1) when stdout cannot be written.
ExitCode verify_batch(batch_verify::TokenChecker& checker, Context& ctx) {
  batch_verify::BatchOptions options;
  options.threads = std::thread::hardware_concurrency();
  const auto outcome = batch_verify::run(
      checker, batch_verify::fd_reader(STDIN_FILENO),
      [](std::string_view lines) {
        return std::fwrite(lines.data(), 1, lines.size(), stdout) == lines.size();
      },
      store_opener(ctx), options);
  if (outcome.write_failed) {
    return ExitCode::failure;
  }
  return outcome.first_failure ? exit_code_for(*outcome.first_failure) : ExitCode::success;
}

// With --json the verdict, valid or not, is the answer asked for and goes to
// stdout, like each line of --batch (exit status as in text mode); a failure
// to verify at all (no token, no keys) is an error on stderr (Context::report).
ExitCode verify_one(const VerifyOptions& opt, Context& ctx, batch_verify::TokenChecker& checker) {
  auto token = token_argument(opt.token);
  if (!token) {
    return ctx.report(token.error(), opt.format);
  }
  batch_verify::LazyStore store(store_opener(ctx));
  auto verified = checker.check(*token, store);
  if (opt.format == OutputFormat::json) {
    print_json(batch_verify::result_document(verified), opt.format);
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
  auto keys = cfg ? open_keys(opt, ctx) : propagate(cfg);
  if (!keys) {
    return ctx.report(keys.error(), opt.format);
  }
  const UnixSeconds now = opt.at ? duration::parse_time(*opt.at).value_or(0) : ctx.clock().now();
  batch_verify::TokenChecker checker(*keys, make_policy(opt, **cfg), now, !opt.no_revocation);
  if (opt.batch) {
    return verify_batch(checker, ctx);
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
