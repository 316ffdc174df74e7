// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/errors.hpp"
#include "claudegate/store.hpp"
#include "claudegate/token.hpp"

// The revocation check shared by `verify` and serve-local; it runs only on
// tokens whose signature and claims already verified.
namespace claudegate::revocation {

// The parts of verified `token` the store looks at (jti, sub, iat, fid).
store::TokenIdentity identity_of(const token::VerifiedToken& token);

// Fail with revoked (naming the jti, subject cut-off or family and the
// reason) when `store` holds a revocation for `token`; storage when the
// store cannot answer — never treated as "not revoked".
Result<void> check(store::Store& store, const token::VerifiedToken& token);

} // namespace claudegate::revocation
