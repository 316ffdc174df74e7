// SPDX-License-Identifier: Apache-2.0
#include "app.hpp"

#include "cmd_complete.hpp"
#include "cmd_inspect.hpp"
#include "cmd_issue.hpp"
#include "cmd_jwks.hpp"
#include "cmd_keygen.hpp"
#include "cmd_revoke.hpp"
#include "cmd_serve_local.hpp"
#include "cmd_usage_report.hpp"
#include "cmd_verify.hpp"
#include "commands.hpp"

#include <fmt/core.h>

namespace claudegate::app {

const std::vector<Command>& commands() {
  static const std::vector<Command> k_commands = {
      {setup_keygen}, {setup_issue},       {setup_verify},       {setup_revoke},
      {setup_jwks},   {setup_serve_local}, {setup_usage_report}, {setup_inspect},
  };
  return k_commands;
}

namespace {

// CLI11 reports --help/--version as "errors" with exit code 0; every real
// parse error becomes our usage status 2 with our diagnostic format.
int exit_for_parse_error(const CLI::App& app, const CLI::ParseError& e) {
  if (e.get_exit_code() == 0) {
    return app.exit(e);
  }
  fmt::print(stderr, "claudegate: error: {}; run 'claudegate --help' for usage\n", e.what());
  return static_cast<int>(ExitCode::usage);
}

} // namespace

int run(int argc, char** argv) {
  CLI::App app{"claudegate: short-lived JWT access to the Claude API without sharing the API key",
               "claudegate"};
  app.set_version_flag("--version", CLAUDEGATE_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  Context ctx;
  ctx.setup_global_options(app);
  for (const auto& command : commands()) {
    command.setup(app, ctx);
  }
  setup_complete(app); // hidden: answers the shell completion scripts
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return exit_for_parse_error(app, e);
  }
  return static_cast<int>(ctx.exit());
}

} // namespace claudegate::app
