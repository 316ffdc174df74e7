// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"

#include <string>
#include <string_view>

// Bytes are carried in std::string / std::string_view throughout the JOSE core.
namespace claudegate::base64url {

// Unpadded base64url (RFC 7515 §2) of `bytes`.
std::string encode(std::string_view bytes);

// Strict decode of unpadded base64url `text`: no padding, whitespace, other
// alphabets, impossible lengths or non-zero trailing bits. Fails with malformed.
Result<std::string> decode(std::string_view text);

} // namespace claudegate::base64url
