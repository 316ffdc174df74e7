// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"

#include <string>
#include <string_view>

namespace claudegate::proxy {

// Anthropic's error envelope for the errors the proxy makes itself:
// {"type":"error","error":{"type":`type`,"message":`message`},"request_id":`request_id`}.
// Invalid UTF-8 in `message` is replaced, so this never throws.
std::string error_body(std::string_view type, std::string_view message, std::string_view request_id);

// A fresh request id shaped like Anthropic's: "req_" and 24 base62 characters from `rng`.
std::string new_request_id(RandomSource& rng);

} // namespace claudegate::proxy
