// SPDX-License-Identifier: Apache-2.0
// API keys at the gateway: a key presented in x-api-key or Authorization:
// Bearer stands for a token of its grant, so the rest of the request path
// (plan, scopes, quotas, metering) treats both alike.
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/jose/token.hpp"
#include "claudegate/store/api_key_cache.hpp"
#include "claudegate/store/api_keys.hpp"
#include "claudegate/store/store.hpp"

#include <string_view>

namespace claudegate::proxy {

// The claims an access token of `key`'s grant would carry (its extra
// claims, iss, aud, sub, plan, scope, roles, daily_token_limit), with the
// key's id as jti and its creation and expiry as iat and exp, as a
// verified token of typ "api_key". Fails with storage when the stored grant
// is unreadable.
Result<token::VerifiedToken> token_of_key(const store::ApiKeyRecord& key);

// Authenticate API key `presented` at `now` through `cache` (reading
// `store` only when cold or after a revocation) and give it as the token of
// its grant. Fails as api_key::authenticate.
Result<token::VerifiedToken> verify_api_key(api_key::KeyCache& cache, store::Store& store,
                                            std::string_view presented, UnixSeconds now);

} // namespace claudegate::proxy
