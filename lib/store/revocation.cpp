// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/revocation.hpp"

#include "claudegate/base/duration.hpp"

#include <fmt/core.h>

namespace claudegate::revocation {

namespace {

std::string string_claim(const json::Json& claims, const char* name) {
  const auto it = claims.find(name);
  return it != claims.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

std::string describe(const store::Revocation& r) {
  const std::string when = duration::format_time(r.revoked_at);
  const std::string why = r.reason.empty() ? std::string{} : fmt::format(" (reason: {})", r.reason);
  switch (r.kind) {
  case store::RevocationKind::jti:
    return fmt::format("token jti {} was revoked at {}{}", r.key, when, why);
  case store::RevocationKind::subject:
    return fmt::format("every token of subject {} issued up to {} was revoked{}", r.key, when, why);
  case store::RevocationKind::family:
    return fmt::format("refresh family {} was revoked at {}{}", r.key, when, why);
  }
  return "token revoked";
}

} // namespace

store::TokenIdentity identity_of(const token::VerifiedToken& token, std::string_view space) {
  const auto scoped = [space](std::string value) {
    return space.empty() || value.empty() ? value : fmt::format("{}|{}", space, value);
  };
  store::TokenIdentity identity;
  identity.jti = scoped(string_claim(token.claims, "jti"));
  identity.subject = scoped(string_claim(token.claims, "sub"));
  const auto iat = token.claims.find("iat");
  // A token without iat predates every cut-off of its subject.
  identity.issued_at =
      iat != token.claims.end() && iat->is_number() ? static_cast<UnixSeconds>(iat->get<double>()) : 0;
  if (auto fid = scoped(string_claim(token.claims, "fid")); !fid.empty()) {
    identity.family_id = std::move(fid);
  }
  return identity;
}

Result<void> check(store::RevocationStore& store, const token::VerifiedToken& token, std::string_view space) {
  auto found = store.find_revocation(identity_of(token, space));
  if (!found) {
    return propagate(found);
  }
  if (*found) {
    return fail(Errc::revoked, describe(**found));
  }
  return {};
}

Result<token::VerifiedToken> verify_unrevoked(std::string_view token, const keyset::KeySet& keys,
                                              const claims::VerifyPolicy& policy, UnixSeconds now,
                                              const StoreSource& store) {
  auto verified = token::verify(token, keys, policy, now);
  if (!verified) {
    return verified;
  }
  auto opened = store();
  if (!opened) {
    return propagate(opened);
  }
  if (*opened == nullptr) {
    return verified;
  }
  if (auto revoked = check(**opened, *verified, policy.revocation_namespace); !revoked) {
    return propagate(revoked);
  }
  return verified;
}

Result<token::VerifiedToken> verify_unrevoked(std::string_view token, const keyset::KeySet& keys,
                                              const claims::VerifyPolicy& policy, UnixSeconds now,
                                              store::RevocationStore* store) {
  return verify_unrevoked(token, keys, policy, now,
                          [store]() -> Result<store::RevocationStore*> { return store; });
}

Result<std::int64_t> revoke(store::Store& store, Target target, const std::string& key,
                            const std::string& reason, UnixSeconds now) {
  const auto none = [](Result<void> done) { return done ? Result<std::int64_t>(0) : propagate(done); };
  switch (target) {
  case Target::jti:
    return none(store.revoke_jti(key, std::nullopt, "", reason, now));
  case Target::subject:
    return store.revoke_subject(key, now, reason, now);
  case Target::family:
    return none(store.revoke_family(key, reason, now));
  case Target::api_key:
    break;
  }
  return none(store.revoke_api_key(key, reason, now));
}

} // namespace claudegate::revocation
