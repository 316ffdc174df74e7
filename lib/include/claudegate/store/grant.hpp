// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"
#include "claudegate/jose/token.hpp"

#include <string_view>

// What a stored credential re-issues (a refresh family, an API key): an
// AccessTokenRequest as JSON, in one shape for every backend.
namespace claudegate::grant {

// The stored form of `request`, without its family id.
json::Json to_json(const token::AccessTokenRequest& request);

// The request stored as `grant`; `owner` names the credential for the
// message ("refresh family F"). Fails with storage when a member is missing
// or of the wrong type.
Result<token::AccessTokenRequest> from_json(const json::Json& grant, std::string_view owner);

} // namespace claudegate::grant
