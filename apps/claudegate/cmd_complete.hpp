// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <CLI/CLI.hpp>

namespace claudegate::app {

// Declare the hidden `__complete -- WORD…` command on `app` for the shell
// completion scripts in completions/. WORDs are the command line after
// "claudegate", the last one being the word under the cursor (possibly empty).
// It prints one directive line (":values", ":files" or ":dirs" — what the
// shell should offer) and then the candidates, one "VALUE<TAB>HELP" per line,
// read from `app`'s own CLI11 definition so that they cannot go stale; plan
// names, subjects and models come from the config and the store. No
// completion offers config keys (no command takes one); the hidden
// `__config-keys` command prints config::key_docs(), one
// "NAME<TAB>TYPE<TAB>DEFAULT<TAB>DOC" per line, for the man page check.
void setup_complete(CLI::App& app);

} // namespace claudegate::app
