// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "context.hpp"

#include <CLI/CLI.hpp>

#include <vector>

namespace claudegate::app {

// A subcommand: the function that declares it (name, options) on the app.
struct Command {
  void (*setup)(CLI::App& app, Context& ctx);
};

// Every subcommand in the order shown by --help; this list drives help,
// completions and the docs-sync test.
const std::vector<Command>& commands();

} // namespace claudegate::app
