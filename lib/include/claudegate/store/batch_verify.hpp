// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"
#include "claudegate/jose/claims.hpp"
#include "claudegate/jose/jwks_remote.hpp"
#include "claudegate/jose/keyset.hpp"
#include "claudegate/jose/token.hpp"
#include "claudegate/store/open.hpp"
#include "claudegate/store/store.hpp"

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

// The engine of `verify` and `verify --batch`: one token per input line
// checked on every core, one JSON result per line in input order.
namespace claudegate::batch_verify {

// Where the verifier takes its keys: one fixed set (the keyring or a JWKS
// file, safe to share between threads), or an IdP's JWKS URL looked up per
// token by kid (refetched as its kid needs).
class KeySource {
public:
  explicit KeySource(std::shared_ptr<const keyset::KeySet> fixed);
  // `disk`, if any, is the cache `remote` was opened with.
  KeySource(std::unique_ptr<jwks_remote::RemoteKeySet> remote, std::unique_ptr<jwks_remote::DiskCache> disk);

  // The fixed set; null for a remote one (use for_token).
  const keyset::KeySet* fixed() const { return m_remote ? nullptr : m_fixed.get(); }

  // The keys for `token`: a remote set is (re)fetched as its kid needs.
  Result<std::shared_ptr<const keyset::KeySet>> for_token(std::string_view token);

private:
  std::shared_ptr<const keyset::KeySet> m_fixed;
  std::unique_ptr<jwks_remote::DiskCache> m_disk; // outlives m_remote, which points to it
  std::unique_ptr<jwks_remote::RemoteKeySet> m_remote;
};

// Opens the store that holds the revocations; null when there is none.
using StoreOpener = std::function<Result<std::unique_ptr<store::Store>>()>;

// The SQLite store at `db`; null when no such file exists (nothing was ever
// revoked: a store file is not created just to be read).
Result<std::unique_ptr<store::Store>> open_existing_sqlite(const std::filesystem::path& db);

// The store at `location`: a SQLite file as open_existing_sqlite (null when
// missing); a PostgreSQL database opened as any command opens it.
Result<std::unique_ptr<store::Store>> open_existing(const store::StoreLocation& location);

// One thread's store for the revocation checks, opened on its first use.
class LazyStore {
public:
  explicit LazyStore(StoreOpener open) : m_open(std::move(open)) {}

  // The store, or null when there is none (asked again next time); fails as
  // the opener does.
  Result<store::RevocationStore*> get();

private:
  StoreOpener m_open;
  std::unique_ptr<store::Store> m_store; // null until a store was opened
};

// Signature and claims under `policy` at `now` first; only a token that
// passed them reaches the store's revocations (unless check_revocation is
// false). With a fixed key source, check may run on several threads at
// once, each with its own LazyStore.
class TokenChecker {
public:
  TokenChecker(KeySource& keys, claims::VerifyPolicy policy, UnixSeconds now, bool check_revocation)
      : m_keys(keys), m_policy(std::move(policy)), m_now(now), m_check_revocation(check_revocation) {}

  Result<token::VerifiedToken> check(std::string_view token, LazyStore& store);

  bool parallel_safe() const { return m_keys.fixed() != nullptr; }

private:
  Result<token::VerifiedToken> check_with(std::string_view token, const keyset::KeySet& keys,
                                          LazyStore& store);

  KeySource& m_keys;
  claims::VerifyPolicy m_policy;
  UnixSeconds m_now;
  bool m_check_revocation;
};

// The verdict as a document: {"alg","claims","kid","valid":true} or
// {"code","error","valid":false} (code: errc_code; part of the --json contract).
json::Json result_document(const Result<token::VerifiedToken>& verified);

// Appends result_document(verified).dump() and '\n' to `out`, written
// directly without copying the claims into a new document.
void append_result_line(std::string& out, const Result<token::VerifiedToken>& verified);

// Reads input into `buffer`: the number of bytes read, 0 at the end (or on an error).
using Reader = std::function<std::size_t(std::span<char> buffer)>;

// A Reader of file descriptor `fd` (retried on EINTR).
Reader fd_reader(int fd);

// Writes a block of result lines; false when it could not.
using Writer = std::function<bool(std::string_view lines)>;

struct BatchOptions {
  unsigned threads = 1;                      // at most; one when the keys are not parallel-safe
  std::size_t chunk_bytes = 4 * 1024 * 1024; // input verified per round (memory stays bounded)
};

struct BatchOutcome {
  std::optional<Errc> first_failure; // the error of the first refused line, in input order
  bool write_failed = false;         // the Writer refused; the batch stopped there
};

// Verifies one token per line of `input` (split at '\n'; a last line without
// one counts), writing one result line per input line, in input order, to
// `output`. A refused token's line ({"valid":false,"code":…}) is data like
// the others: line N answers input line N. Each thread opens its own store
// through `open_store` when a token first needs it.
BatchOutcome run(TokenChecker& checker, const Reader& input, const Writer& output,
                 const StoreOpener& open_store, const BatchOptions& options = {});

} // namespace claudegate::batch_verify
