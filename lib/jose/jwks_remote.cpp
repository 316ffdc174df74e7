// SPDX-License-Identifier: Apache-2.0
#include "claudegate/jose/jwks_remote.hpp"

#include "jwks_http.hpp"
#include "openssl_util.hpp"

#include "claudegate/base/fs.hpp"
#include "claudegate/base/json.hpp"
#include "claudegate/base/net.hpp"
#include "claudegate/base/text.hpp"
#include "claudegate/jose/base64url.hpp"
#include "claudegate/jose/jwks.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <chrono>

namespace claudegate::jwks_remote {

namespace {

constexpr std::string_view k_fix_url = "check --jwks (e.g. https://TENANT/.well-known/jwks.json)";

struct UrlParts {
  std::string scheme;    // "http" or "https"
  std::string authority; // host[:port] as in the URL
  std::string host;      // without brackets or port
  std::string target;    // path and query, "/" at least
};

std::string host_of(std::string_view authority) {
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    return std::string(authority.substr(1, close == std::string_view::npos ? close : close - 1));
  }
  return std::string(authority.substr(0, authority.rfind(':')));
}

Result<UrlParts> split_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  const std::string_view scheme = url.substr(0, scheme_end == std::string_view::npos ? 0 : scheme_end);
  if (scheme != "https" && scheme != "http") {
    return fail(Errc::config, fmt::format("--jwks {}: not an https:// URL; {}", url, k_fix_url));
  }
  const std::size_t start = scheme_end + 3;
  const std::size_t end = std::min(url.find('/', start), url.find('?', start));
  const std::string_view authority = url.substr(start, end == std::string_view::npos ? end : end - start);
  if (authority.find('@') != std::string_view::npos) {
    return fail(Errc::config,
                fmt::format("--jwks {}: user info in the URL is not supported; {}", url, k_fix_url));
  }
  UrlParts parts{std::string(scheme), std::string(authority), host_of(authority),
                 end == std::string_view::npos ? "/" : std::string(url.substr(end))};
  if (parts.host.empty()) {
    return fail(Errc::config, fmt::format("--jwks {}: the URL has no host; {}", url, k_fix_url));
  }
  if (parts.target.starts_with('?')) {
    parts.target.insert(0, "/");
  }
  return parts;
}

std::string port_of(const UrlParts& parts) {
  const std::string_view authority = parts.authority;
  const auto close = authority.rfind(']');
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos || (close != std::string_view::npos && colon < close)) {
    return parts.scheme == "https" ? "443" : "80";
  }
  return std::string(authority.substr(colon + 1));
}

// Why an exchange failed, in words an operator can act on.
std::string transport_reason(const GetReply& reply, std::int64_t timeout) {
  switch (reply.failure) {
  case GetFailure::refused:
    return "connection refused or host unreachable";
  case GetFailure::connect_timeout:
    return fmt::format("no connection within {}s (timed out)", timeout);
  case GetFailure::tls_handshake:
    return fmt::format("TLS handshake failed: {}", reply.detail);
  case GetFailure::tls_verify:
    return fmt::format("the server's TLS certificate did not verify against the system CA bundle: {}",
                       reply.detail);
  case GetFailure::tls_setup:
    return "the system CA bundle could not be loaded";
  case GetFailure::too_slow:
    return fmt::format("the body took over {}s (timed out)", 2 * timeout);
  default:
    return fmt::format("no complete answer within {}s (timed out) or the connection was cut", timeout);
  }
}

Error status_error(const std::string& url, const GetReply& head) {
  if (head.status >= 300 && head.status < 400 && !head.location.empty()) {
    return {Errc::io, fmt::format("JWKS URL {} redirects (HTTP {}) to {}; pass the final URL to --jwks", url,
                                  head.status, head.location)};
  }
  return {Errc::io,
          fmt::format("JWKS URL {} answered HTTP {} (expected 200); {}", url, head.status, k_fix_url)};
}

Error exchange_error(const std::string& url, const GetReply& reply, const Limits& limits) {
  if (reply.failure == GetFailure::none) {
    return status_error(url, reply);
  }
  if (reply.failure == GetFailure::too_big) {
    return {Errc::io,
            fmt::format("JWKS from {} is larger than {} bytes; {}", url, limits.max_bytes, k_fix_url)};
  }
  return {Errc::io, fmt::format("cannot fetch JWKS from {} ({}); check the URL and that the IdP is reachable "
                                "from this machine",
                                url, transport_reason(reply, limits.timeout))};
}

// The max-age of one Cache-Control directive, min for no-cache/no-store, nullopt otherwise.
std::optional<std::int64_t> directive_age(std::string_view directive, const Limits& limits) {
  const std::string name = text::lower(text::trim(directive));
  if (name == "no-cache" || name == "no-store") {
    return limits.min_max_age;
  }
  if (!name.starts_with("max-age=")) {
    return std::nullopt;
  }
  std::int64_t seconds = 0;
  const std::string_view digits = std::string_view(name).substr(8);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seconds);
  if (ec == std::errc::result_out_of_range) {
    return limits.max_max_age;
  }
  return ec == std::errc{} && end == digits.data() + digits.size() ? std::optional(seconds) : std::nullopt;
}

Result<keyset::KeySet> parse_keys(const std::string& url, std::string_view text) {
  auto keys = jwks::parse(text, jwks::AllowSymmetric::no);
  if (!keys) {
    return fail(Errc::io,
                fmt::format("JWKS from {} is not a usable key set ({}); check that the URL serves the "
                            "IdP's JWKS document",
                            url, keys.error().message));
  }
  return keys;
}

Result<std::string> file_name(const std::string& url) {
  auto digest = ossl::sha256(url);
  if (!digest) {
    return propagate(digest);
  }
  return base64url::encode(*digest) + ".json";
}

// An on-disk entry: the document of exactly `url`, with sane numbers.
std::optional<CachedDocument> cached_from(const json::Json& entry, const std::string& url) {
  const auto field = [&](const char* name) { return entry.find(name); };
  const auto stored_url = field("url");
  const auto fetched_at = field("fetched_at");
  const auto max_age = field("max_age");
  const auto text = field("jwks");
  if (stored_url == entry.end() || *stored_url != url || fetched_at == entry.end()
      || !fetched_at->is_number_integer() || max_age == entry.end() || !max_age->is_number_integer()
      || text == entry.end() || !text->is_string()) {
    return std::nullopt;
  }
  return CachedDocument{{text->get<std::string>(), max_age->get<std::int64_t>()},
                        fetched_at->get<UnixSeconds>()};
}

} // namespace

Result<void> check_url(std::string_view url) {
  auto parts = split_url(url);
  if (!parts) {
    return propagate(parts);
  }
  if (parts->scheme == "http" && !net::is_loopback(parts->host)) {
    return fail(Errc::config, fmt::format("--jwks {}: plain http:// is only allowed to a loopback host (keys "
                                          "fetched in the clear can be swapped); use https://",
                                          url));
  }
  return {};
}

std::int64_t max_age_of(std::string_view cache_control, const Limits& limits) {
  std::optional<std::int64_t> age;
  for (std::size_t start = 0; start <= cache_control.size();) {
    const auto comma = std::min(cache_control.find(',', start), cache_control.size());
    if (auto found = directive_age(cache_control.substr(start, comma - start), limits)) {
      age = age ? std::min(*age, *found) : *found;
    }
    start = comma + 1;
  }
  return std::clamp(age.value_or(limits.default_max_age), limits.min_max_age, limits.max_max_age);
}

Result<Document> fetch(const std::string& url, const Limits& limits) {
  auto allowed = check_url(url);
  auto parts = allowed ? split_url(url) : propagate(allowed);
  if (!parts) {
    return propagate(parts);
  }
  GetReply reply = http_get({parts->scheme == "https", parts->host, port_of(*parts), parts->authority,
                             parts->target, limits.timeout, limits.max_bytes});
  if (reply.failure != GetFailure::none || reply.status != 200) {
    return std::unexpected(exchange_error(url, reply, limits));
  }
  return Document{std::move(reply.body), max_age_of(reply.cache_control, limits)};
}

std::filesystem::path DiskCache::path_for(const std::string& url) const {
  auto name = file_name(url);
  return m_dir / name.value_or("unhashable.json");
}

std::optional<CachedDocument> DiskCache::load(const std::string& url) const {
  auto text = fs::read(path_for(url), 4 * 1024 * 1024);
  auto entry = text ? json::parse_object(*text, {4 * 1024 * 1024, 4}) : propagate(text);
  return entry ? cached_from(*entry, url) : std::nullopt;
}

Result<void> DiskCache::save(const std::string& url, const CachedDocument& cached) const {
  if (auto dir = fs::create_private_dir(m_dir); !dir) {
    return dir;
  }
  const json::Json entry{{"url", url},
                         {"fetched_at", cached.fetched_at},
                         {"max_age", cached.document.max_age},
                         {"jwks", cached.document.text}};
  return fs::write_atomic(path_for(url), entry.dump(),
                          std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

RemoteKeySet::RemoteKeySet(std::string url, const Clock& clock, const Limits& limits, Fetcher fetcher,
                           const DiskCache* disk)
    : m_url(std::move(url)), m_clock(clock), m_limits(limits), m_fetcher(std::move(fetcher)), m_disk(disk) {
}

Result<std::unique_ptr<RemoteKeySet>> RemoteKeySet::open(std::string url, const Clock& clock,
                                                         const Limits& limits, Fetcher fetcher,
                                                         const DiskCache* disk) {
  if (auto allowed = check_url(url); !allowed) {
    return propagate(allowed);
  }
  if (!fetcher) {
    fetcher = [limits](const std::string& target) { return fetch(target, limits); };
  }
  return std::unique_ptr<RemoteKeySet>(
      new RemoteKeySet(std::move(url), clock, limits, std::move(fetcher), disk));
}

Result<std::shared_ptr<const keyset::KeySet>> RemoteKeySet::keys_for(std::string_view kid) {
  const std::lock_guard lock(m_mutex);
  const UnixSeconds now = m_clock.now();
  load_disk();
  const bool unknown_kid = m_keys && !kid.empty() && m_keys->find(kid) == nullptr;
  if ((!m_keys || stale(now) || unknown_kid) && may_refetch(now)) {
    refetch(now);
  }
  if (m_keys && now - m_cached.fetched_at < m_limits.max_stale) {
    return m_keys;
  }
  return std::unexpected(m_last_error.value_or(
      Error{Errc::io, fmt::format("no keys from JWKS URL {} yet; {}", m_url, k_fix_url)}));
}

// Once per process: a document another run fetched saves a request.
void RemoteKeySet::load_disk() {
  if (m_disk == nullptr || m_disk_loaded) {
    return;
  }
  m_disk_loaded = true;
  const auto cached = m_disk->load(m_url);
  if (cached && adopt(*cached)) {
    m_last_attempt = cached->fetched_at;
  }
}

bool RemoteKeySet::stale(UnixSeconds now) const {
  return now >= m_cached.fetched_at + m_cached.document.max_age;
}

bool RemoteKeySet::may_refetch(UnixSeconds now) const {
  return !m_last_attempt || now - *m_last_attempt >= m_limits.refetch_interval || now < *m_last_attempt;
}

void RemoteKeySet::refetch(UnixSeconds now) {
  m_last_attempt = now;
  auto document = m_fetcher(m_url);
  auto adopted = document ? adopt({std::move(*document), now}) : propagate(document);
  if (!adopted) {
    m_last_error = adopted.error();
    return;
  }
  m_last_error.reset();
  if (m_disk != nullptr) {
    (void)m_disk->save(m_url, m_cached); // an unwritable cache only costs a fetch next run
  }
}

Result<void> RemoteKeySet::adopt(const CachedDocument& cached) {
  auto keys = parse_keys(m_url, cached.document.text);
  if (!keys) {
    return propagate(keys);
  }
  m_keys = std::make_shared<const keyset::KeySet>(std::move(*keys));
  m_cached = cached;
  m_cached.document.max_age = std::clamp(cached.document.max_age, m_limits.min_max_age, m_limits.max_max_age);
  return {};
}

} // namespace claudegate::jwks_remote
