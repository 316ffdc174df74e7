// SPDX-License-Identifier: Apache-2.0
#include "cmd_jwks.hpp"

#include "options.hpp"

#include <claudegate/base/fs.hpp>
#include <claudegate/jose/jwks.hpp>

#include <fmt/core.h>

#include <memory>

namespace claudegate::app {

namespace {

struct JwksOptions {
  std::string out_file;
};

ExitCode run_jwks(const JwksOptions& opt, Context& ctx) {
  auto ring = ctx.keyring();
  if (!ring) {
    return ctx.report(ring.error());
  }
  const std::string document = jwks::to_document(ring->public_keys()).dump(2) + "\n";
  if (opt.out_file.empty()) {
    fmt::print("{}", document);
    return ExitCode::success;
  }
  // Public keys only: the file may be served to anyone.
  using std::filesystem::perms;
  const auto mode = perms::owner_read | perms::owner_write | perms::group_read | perms::others_read;
  if (auto written = fs::write_atomic(opt.out_file, document, mode); !written) {
    return ctx.report(written.error());
  }
  return ExitCode::success;
}

} // namespace

void setup_jwks(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<JwksOptions>();
  auto* cmd = app.add_subcommand("jwks", "Print the JWKS of the active and published public keys");
  cmd->add_option("--out", opt->out_file, "write the JWKS to this file atomically instead of stdout");
  cmd->callback([opt, &ctx] { ctx.set_exit(run_jwks(*opt, ctx)); });
}

} // namespace claudegate::app
