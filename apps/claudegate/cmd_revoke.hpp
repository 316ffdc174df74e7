// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "context.hpp"

#include <CLI/CLI.hpp>

namespace claudegate::app {

// Declare the `revoke` subcommand on `app`; its callback runs it with `ctx`.
void setup_revoke(CLI::App& app, Context& ctx);

} // namespace claudegate::app
