// SPDX-License-Identifier: Apache-2.0
#pragma once

namespace claudegate::app {

// Build the CLI, parse `argv`, run the chosen command; the process exit status.
int run(int argc, char** argv);

} // namespace claudegate::app
