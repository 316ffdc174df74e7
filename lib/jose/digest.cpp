// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/digest.hpp"

#include "openssl_util.hpp"

namespace claudegate::digest {

Result<std::string> sha256(std::string_view data) {
  return ossl::sha256(data);
}

} // namespace claudegate::digest
