// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"

#include <string>
#include <string_view>

// Message digests for the layers above jose (which do not see OpenSSL).
namespace claudegate::digest {

// The SHA-256 digest (32 raw bytes) of `data`. Fails with internal when OpenSSL fails.
Result<std::string> sha256(std::string_view data);

// True when `a` and `b` are equal, in time that depends only on their
// lengths (CRYPTO_memcmp), for comparing secrets and their hashes.
bool equal(std::string_view a, std::string_view b);

} // namespace claudegate::digest
