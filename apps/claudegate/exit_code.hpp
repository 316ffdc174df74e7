// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <claudegate/base/errors.hpp>

namespace claudegate::app {

// The process exit status contract (DESIGN.md §6, man page EXIT STATUS).
enum class ExitCode : int {
  success = 0,       // success / token valid
  failure = 1,       // I/O, database, internal
  usage = 2,         // bad flags or config
  invalid = 3,       // malformed, bad signature, unknown key, claim mismatch
  expired = 4,       // expired or not yet valid
  revoked = 5,       // revoked
  refresh_reuse = 6, // refresh-token reuse detected (family revoked)
};

// The exit status for library error code `errc`; the one place this mapping lives.
ExitCode exit_code_for(Errc errc);

} // namespace claudegate::app
