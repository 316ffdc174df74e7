// SPDX-License-Identifier: Apache-2.0
#include "exit_code.hpp"

namespace claudegate::app {

ExitCode exit_code_for(Errc errc) {
  switch (errc) {
  case Errc::malformed:
  case Errc::bad_signature:
  case Errc::unknown_key:
  case Errc::claim_mismatch:
  case Errc::unsupported:
    return ExitCode::invalid;
  case Errc::expired:
  case Errc::not_yet_valid:
    return ExitCode::expired;
  case Errc::revoked:
    return ExitCode::revoked;
  case Errc::refresh_reuse:
    return ExitCode::refresh_reuse;
  case Errc::config:
    return ExitCode::usage;
  case Errc::io:
  case Errc::storage:
  case Errc::internal:
    return ExitCode::failure;
  }
  return ExitCode::failure;
}

} // namespace claudegate::app
