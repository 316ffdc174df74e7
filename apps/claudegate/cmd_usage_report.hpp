// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "context.hpp"

#include <CLI/CLI.hpp>

namespace claudegate::app {

// Declare the `usage-report` subcommand on `app`; its callback runs it with `ctx`.
void setup_usage_report(CLI::App& app, Context& ctx);

} // namespace claudegate::app
