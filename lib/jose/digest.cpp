// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/digest.hpp"

#include "openssl_util.hpp"

#include <openssl/crypto.h>

namespace claudegate::digest {

Result<std::string> sha256(std::string_view data) {
  return ossl::sha256(data);
}

bool equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace claudegate::digest
