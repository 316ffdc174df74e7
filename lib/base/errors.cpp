// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/errors.hpp"

namespace claudegate {

std::string_view errc_code(Errc errc) {
  switch (errc) {
  case Errc::malformed:
    return "malformed";
  case Errc::bad_signature:
    return "bad_signature";
  case Errc::unknown_key:
    return "unknown_key";
  case Errc::expired:
    return "expired";
  case Errc::not_yet_valid:
    return "not_yet_valid";
  case Errc::claim_mismatch:
    return "claim_mismatch";
  case Errc::revoked:
    return "revoked";
  case Errc::refresh_reuse:
    return "refresh_reuse";
  case Errc::unsupported:
    return "unsupported";
  case Errc::io:
    return "io";
  case Errc::storage:
    return "storage";
  case Errc::config:
    return "config";
  case Errc::internal:
    return "internal";
  }
  return "internal";
}

std::unexpected<Error> fail(Errc code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

} // namespace claudegate
