// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "context.hpp"

#include <CLI/CLI.hpp>

namespace claudegate::app {

// Declare the `serve-local` subcommand on `app`; its callback runs the gateway with `ctx`.
void setup_serve_local(CLI::App& app, Context& ctx);

} // namespace claudegate::app
