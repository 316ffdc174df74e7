// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/refresh.hpp"

#include "claudegate/jose/base64url.hpp"
#include "claudegate/jose/digest.hpp"
#include "claudegate/store/grant.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <optional>

namespace claudegate::refresh {

namespace {

constexpr std::size_t k_token_bytes = 32;  // 256 random bits
constexpr std::size_t k_family_bytes = 16; // 128 random bits
constexpr std::size_t k_encoded_length = 43;

std::string new_token(RandomSource& rng) {
  return std::string(k_prefix) + base64url::encode(rng.bytes(k_token_bytes));
}

} // namespace

Result<std::string> hash(std::string_view token) {
  auto hashed = digest::sha256(token);
  if (!hashed) {
    return hashed;
  }
  return base64url::encode(*hashed);
}

Result<void> check_format(std::string_view token) {
  const bool shaped = token.starts_with(k_prefix) && token.size() == k_prefix.size() + k_encoded_length;
  if (!shaped || !base64url::decode(token.substr(k_prefix.size()))) {
    return fail(Errc::malformed, fmt::format("not a claudegate refresh token (expected {} followed by {} "
                                             "base64url characters)",
                                             k_prefix, k_encoded_length));
  }
  return {};
}

Result<TokenPair> start_family(store::FamilyStore& store, const token::AccessTokenRequest& request,
                               const keys::Key& signer, const Lifetimes& lifetimes, UnixSeconds now,
                               RandomSource& rng) {
  token::AccessTokenRequest with_family = request;
  with_family.family_id = base64url::encode(rng.bytes(k_family_bytes));
  // Sign first: nothing is stored for a request that cannot be minted.
  auto access = token::issue(with_family, signer, now, rng);
  if (!access) {
    return propagate(access);
  }
  TokenPair pair{*access, new_token(rng), now + std::min(lifetimes.refresh_ttl, lifetimes.family_ttl),
                 *with_family.family_id};
  auto token_hash = hash(pair.refresh_token);
  if (!token_hash) {
    return propagate(token_hash);
  }
  const store::NewFamily family{
      pair.family_id, request.subject,        grant::to_json(request), now, now + lifetimes.family_ttl,
      *token_hash,    pair.refresh_expires_at};
  if (auto created = store.create_family(family); !created) {
    return propagate(created);
  }
  return pair;
}

Result<TokenPair> rotate(store::FamilyStore& store, std::string_view presented, const keys::Key& signer,
                         const Lifetimes& lifetimes, UnixSeconds now, RandomSource& rng) {
  if (auto shaped = check_format(presented); !shaped) {
    return propagate(shaped);
  }
  TokenPair pair;
  pair.refresh_token = new_token(rng);
  auto presented_hash = hash(presented);
  auto new_hash = hash(pair.refresh_token);
  if (!presented_hash || !new_hash) {
    return std::unexpected(!presented_hash ? presented_hash.error() : new_hash.error());
  }
  // The access token is signed inside the rotation transaction: if signing
  // fails, the presented token stays unused.
  const auto mint = [&](const store::RotatedFamily& rotated) -> Result<void> {
    auto request = grant::from_json(rotated.grant, "refresh family " + rotated.family_id);
    if (request) {
      request->family_id = rotated.family_id;
    }
    auto access = request ? token::issue(*request, signer, now, rng) : propagate(request);
    if (!access) {
      return propagate(access);
    }
    pair.access = std::move(*access);
    return {};
  };
  auto rotated = store.rotate({*presented_hash, *new_hash, now, lifetimes.refresh_ttl}, mint);
  if (!rotated) {
    return propagate(rotated);
  }
  pair.family_id = rotated->family_id;
  pair.refresh_expires_at = rotated->token_expires_at;
  return pair;
}

} // namespace claudegate::refresh
