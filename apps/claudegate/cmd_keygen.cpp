// SPDX-License-Identifier: Apache-2.0
#include "cmd_keygen.hpp"

#include "options.hpp"
#include "progress.hpp"

#include <claudegate/base/duration.hpp>
#include <claudegate/base/fs.hpp>

#include <fmt/core.h>

#include <memory>

namespace claudegate::app {

namespace {

struct KeygenOptions {
  std::optional<std::string> alg;
  std::optional<int> bits;
  std::string import_file;
  bool rotate = false;
  bool list = false;
  OutputFormat format = OutputFormat::text;
};

json::Json record_json(const keyring::KeyRecord& record) {
  json::Json out = {{"kid", record.kid},
                    {"alg", alg_name(record.alg)},
                    {"state", key_state_name(record.state)},
                    {"bits", record.bits},
                    {"created_at", duration::format_time(record.created_at)}};
  if (record.retire_at) {
    out["retire_at"] = duration::format_time(*record.retire_at);
  }
  return out;
}

void print_key_table(const std::vector<keyring::KeyRecord>& records) {
  fmt::print("{:<44} {:<6} {:<10} {:<5} {:<21} {}\n", "KID", "ALG", "STATE", "BITS", "CREATED", "RETIRES");
  for (const auto& r : records) {
    const std::string retires = r.retire_at ? duration::format_time(*r.retire_at) : "-";
    fmt::print("{:<44} {:<6} {:<10} {:<5} {:<21} {}\n", r.kid, alg_name(r.alg), key_state_name(r.state),
               r.bits, duration::format_time(r.created_at), retires);
  }
}

ExitCode list_keys(const KeygenOptions& opt, Context& ctx) {
  auto ring = ctx.keyring();
  if (!ring) {
    return ctx.report(ring.error(), opt.format);
  }
  if (opt.format == OutputFormat::json) {
    json::Json keys = json::Json::array();
    for (const auto& record : ring->records()) {
      keys.push_back(record_json(record));
    }
    print_json({{"keys", keys}}, opt.format);
  } else {
    print_key_table(ring->records());
  }
  return ExitCode::success;
}

Result<keys::Key> parse_key_text(const std::string& text, std::optional<keys::Alg> alg) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '{') {
    return keys::Key::from_pem(text, alg);
  }
  auto jwk = json::parse_object(text, {.max_bytes = 64 * 1024, .max_depth = 4});
  if (!jwk) {
    return propagate(jwk);
  }
  return keys::Key::from_jwk(*jwk, alg);
}

// The imported key: a JWK when the file holds a JSON object, else PEM.
Result<keys::Key> import_key(const KeygenOptions& opt) {
  auto text = fs::read(opt.import_file, 1024 * 1024);
  if (!text) {
    return propagate(text);
  }
  auto key = parse_key_text(*text, opt.alg ? keys::alg_from_name(*opt.alg) : std::nullopt);
  if (key && !key->has_private()) {
    return fail(Errc::config, fmt::format("{} holds a public key only; keygen --import needs the "
                                          "private key (to verify with public keys use verify --jwks FILE)",
                                          opt.import_file));
  }
  return key;
}

Result<keys::Key> new_key(const KeygenOptions& opt) {
  if (!opt.import_file.empty()) {
    return import_key(opt);
  }
  const keys::Alg alg = keys::alg_from_name(opt.alg.value_or("RS256")).value_or(keys::Alg::RS256);
  const bool is_rsa = alg == keys::Alg::RS256 || alg == keys::Alg::RS384 || alg == keys::Alg::RS512
                      || alg == keys::Alg::PS256;
  if (opt.bits && !is_rsa) {
    return fail(Errc::config,
                fmt::format("--bits applies to RSA keys only, not {}; drop --bits", alg_name(alg)));
  }
  const int bits = opt.bits.value_or(2048);
  Spinner spinner(fmt::format("generating {} key ({} bits)…", alg_name(alg), bits));
  if (!is_rsa || !spinner.active()) {
    return keys::Key::generate(alg, bits);
  }
  return keys::Key::generate(alg, bits, [&spinner] { spinner.tick(); });
}

void print_added(const keyring::KeyRecord& record, OutputFormat format) {
  if (format == OutputFormat::json) {
    print_json(record_json(record), format);
  } else {
    fmt::print("{}\n", record.kid);
  }
}

ExitCode run_keygen(const KeygenOptions& opt, Context& ctx) {
  if (opt.list) {
    return list_keys(opt, ctx);
  }
  auto paths = ctx.paths_created();
  auto cfg = ctx.config();
  if (!paths || !cfg) {
    return ctx.report(!paths ? paths.error() : cfg.error(), opt.format);
  }
  auto ring = ctx.keyring();
  auto key = ring ? new_key(opt) : propagate(ring);
  if (!key) {
    return ctx.report(key.error(), opt.format);
  }
  // The old signer keeps verifying until every token it may have signed has expired.
  const std::int64_t retire_after = (*cfg)->max_access_ttl + (*cfg)->leeway;
  const auto rotation = opt.rotate ? keyring::Rotation::yes : keyring::Rotation::no;
  auto record = ring->add(*key, rotation, ctx.clock().now(), retire_after);
  if (!record) {
    return ctx.report(record.error(), opt.format);
  }
  print_added(*record, opt.format);
  return ExitCode::success;
}

} // namespace

void setup_keygen(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<KeygenOptions>();
  auto* cmd = app.add_subcommand("keygen", "Create, import, rotate or list signing keys; prints the kid");
  cmd->add_option("--alg", opt->alg, "signing algorithm (default RS256; derived from the key with --import)")
      ->check(CLI::IsMember(alg_names()));
  cmd->add_option("--bits", opt->bits, "RSA modulus size (default 2048)")
      ->check(CLI::IsMember({2048, 3072, 4096}));
  auto* import = cmd->add_option("--import", opt->import_file,
                                 "import a private key file (PEM PKCS#1/PKCS#8/SEC1 or JWK)")
                     ->check(CLI::ExistingFile);
  auto* rotate = cmd->add_flag("--rotate", opt->rotate,
                               "make the new key the signer; the old one verifies until its tokens expire");
  cmd->add_flag("--list", opt->list, "list the keys with their state")->excludes(import)->excludes(rotate);
  add_json_flag(*cmd, opt->format);
  cmd->callback([opt, &ctx] { ctx.set_exit(run_keygen(*opt, ctx)); });
}

} // namespace claudegate::app
