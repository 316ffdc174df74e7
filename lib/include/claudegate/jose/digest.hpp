// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"

#include <string>
#include <string_view>

// Message digests for the layers above jose (which do not see OpenSSL).
namespace claudegate::digest {

// The SHA-256 digest (32 raw bytes) of `data`. Fails with internal when OpenSSL fails.
Result<std::string> sha256(std::string_view data);

} // namespace claudegate::digest
