// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/jose/token.hpp"
#include "claudegate/store/revocations.hpp"
#include "claudegate/store/store.hpp"

#include <functional>

// The revocation check shared by `verify` and serve-local; it runs only on
// tokens whose signature and claims already verified.
namespace claudegate::revocation {

// The parts of verified `token` the store looks at (jti, sub, iat, fid),
// each as "`space`|value" when `space` is not empty (an external IdP's tokens).
store::TokenIdentity identity_of(const token::VerifiedToken& token, std::string_view space = {});

// Fail with revoked (naming the jti, subject cut-off or family and the
// reason) when `store` holds a revocation for `token` (its identity in
// namespace `space`); storage when the store cannot answer — never treated
// as "not revoked".
Result<void> check(store::RevocationStore& store, const token::VerifiedToken& token,
                   std::string_view space = {});

// The one token check of `verify` and serve-local: token::verify of `token`
// with `keys` under `policy` at `now`, then — only when signature and claims
// passed — check(`*store`) in policy.revocation_namespace (a null `store`
// keeps no revocations). Fails as
// token::verify does, or with revoked or storage.
Result<token::VerifiedToken> verify_unrevoked(std::string_view token, const keyset::KeySet& keys,
                                              const claims::VerifyPolicy& policy, UnixSeconds now,
                                              store::RevocationStore* store);

// The store, opened only when needed (a null store keeps no revocations).
using StoreSource = std::function<Result<store::RevocationStore*>()>;

// As above, but `store` is called only once signature and claims passed, so
// a bad token never opens the store. Fails also with the store's error.
Result<token::VerifiedToken> verify_unrevoked(std::string_view token, const keyset::KeySet& keys,
                                              const claims::VerifyPolicy& policy, UnixSeconds now,
                                              const StoreSource& store);

// What an operator revokes by name (`claudegate revoke`, POST /admin/revoke).
enum class Target { jti, subject, family, api_key };

// Revoke `key` as `target` for `reason` at `now`: deny-list a jti (kept
// until pruned by hand: its expiry is unknown), cut a subject off at `now`,
// revoke a refresh family or an API key. Gives the number of live refresh
// families a subject cut-off stopped (0 for the other targets). Fails with
// claim_mismatch (an unknown family or key) or storage.
Result<std::int64_t> revoke(store::Store& store, Target target, const std::string& key,
                            const std::string& reason, UnixSeconds now);

} // namespace claudegate::revocation
