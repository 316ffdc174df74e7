// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/jose/keyset.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

// An external IdP's JWKS fetched by URL (verify --jwks URL, serve-local
// --jwks URL; DESIGN.md §2, §6): cached per URL, refetched on an unknown kid at
// most every 30 s, the previous keys kept when a refetch fails.
namespace claudegate::jwks_remote {

// How documents are fetched and how long they are trusted, in seconds.
struct Limits {
  std::int64_t timeout = 5;               // connect, and each read (a silent server fails in ~5 s)
  std::size_t max_bytes = 1024 * 1024;    // largest JWKS body accepted
  std::int64_t default_max_age = 10 * 60; // freshness without a Cache-Control max-age
  std::int64_t min_max_age = 30;          // floor for max-age (also for no-cache/no-store)
  std::int64_t max_max_age = 24 * 3600;   // ceiling for max-age
  std::int64_t refetch_interval = 30;     // at most one refetch per this many seconds
  std::int64_t max_stale = 24 * 3600;     // keys kept this long after their fetch while refetches fail
};

// A fetched JWKS body and how long it stays fresh.
struct Document {
  std::string text;
  std::int64_t max_age = 0;
};

// A document with the time it was fetched, as the caches keep it.
struct CachedDocument {
  Document document;
  UnixSeconds fetched_at = 0;
};

// Refuse a `url` we will not fetch: not http(s)://, no host, user info in
// it, or plain http:// to a host that is not loopback. Fails with config.
Result<void> check_url(std::string_view url);

// The seconds Cache-Control value `cache_control` (empty when absent) lets a
// response stay fresh: its max-age, limits.default_max_age when there is
// none, limits.min_max_age for no-cache/no-store, always clamped to
// [min_max_age, max_max_age].
std::int64_t max_age_of(std::string_view cache_control, const Limits& limits);

// GET `url` (TLS verified against the system CA bundle; redirects not
// followed): limits.timeout for the connect and each read, twice that for
// the whole body, at most limits.max_bytes. Fails with config
// (check_url) or io (unreachable, timeout, TLS failure, a status other than
// 200, a body over the size limit), naming the URL and the fix.
Result<Document> fetch(const std::string& url, const Limits& limits);

// Fetches the document at a URL; fetch() in production, a fake in tests.
using Fetcher = std::function<Result<Document>(const std::string& url)>;

// Documents kept between processes (verify runs once per call) in `dir`:
// one file per URL named by the SHA-256 of the URL.
class DiskCache {
public:
  explicit DiskCache(std::filesystem::path dir) : m_dir(std::move(dir)) {}

  // The document cached for `url`; nullopt when none, unreadable or not for
  // this URL (a broken entry is a miss, refetched and overwritten).
  std::optional<CachedDocument> load(const std::string& url) const;

  // Store `cached` for `url` atomically (folder 0700, file 0600). Fails with io.
  Result<void> save(const std::string& url, const CachedDocument& cached) const;

  // The file that holds `url`'s document.
  std::filesystem::path path_for(const std::string& url) const;

private:
  std::filesystem::path m_dir;
};

// One IdP's key set by URL, safe to share between threads.
class RemoteKeySet {
public:
  // A key set for `url` timed by `clock`, fetched by `fetcher` (fetch() under
  // `limits` when empty) and kept in `disk` too when given (it must outlive
  // the set). Nothing is fetched yet. Fails with config (check_url).
  static Result<std::unique_ptr<RemoteKeySet>> open(std::string url, const Clock& clock, const Limits& limits,
                                                    Fetcher fetcher = {}, const DiskCache* disk = nullptr);

  // The keys to verify a token whose header names `kid` (empty: no
  // refetch for it): the cached set while fresh, else a new fetch; a kid the
  // set lacks triggers a refetch when the last one is `refetch_interval` old.
  // A failed refetch keeps the previous keys (up to `max_stale` after their
  // fetch), so an unknown kid then fails in token::verify as unknown_key.
  // Fails with the fetch's error (io, config) when there are no usable keys.
  Result<std::shared_ptr<const keyset::KeySet>> keys_for(std::string_view kid);

  const std::string& url() const { return m_url; }

private:
  RemoteKeySet(std::string url, const Clock& clock, const Limits& limits, Fetcher fetcher,
               const DiskCache* disk);
  void load_disk();
  bool stale(UnixSeconds now) const;
  bool may_refetch(UnixSeconds now) const;
  void refetch(UnixSeconds now);
  Result<void> adopt(const CachedDocument& cached);

  std::string m_url;
  const Clock& m_clock;
  Limits m_limits;
  Fetcher m_fetcher;
  const DiskCache* m_disk;
  std::mutex m_mutex; // held across a fetch: concurrent callers wait for its result
  bool m_disk_loaded = false;
  std::shared_ptr<const keyset::KeySet> m_keys;
  CachedDocument m_cached;
  std::optional<UnixSeconds> m_last_attempt;
  std::optional<Error> m_last_error;
};

} // namespace claudegate::jwks_remote
