// SPDX-License-Identifier: Apache-2.0
#include "cmd_verify.hpp"

#include "options.hpp"

#include <claudegate/base/duration.hpp>
#include <claudegate/jose/jwks.hpp>
#include <claudegate/jose/jwks_remote.hpp>
#include <claudegate/jose/jws.hpp>
#include <claudegate/jose/token.hpp>
#include <claudegate/store/revocation.hpp>
#include <claudegate/store/sqlite.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <span>
#include <thread>
#include <unistd.h>

namespace claudegate::app {

namespace {

struct VerifyOptions {
  std::string token;
  bool batch = false;
  std::string jwks;
  std::optional<std::string> issuer;
  std::vector<std::string> audiences;
  std::optional<std::string> leeway;
  std::vector<std::string> required_claims;
  std::vector<std::string> scopes;
  std::optional<std::string> at;
  bool no_revocation = false;
  OutputFormat format = OutputFormat::text;
};

Result<keyset::KeySet> keyring_keys(Context& ctx) {
  auto ring = ctx.keyring();
  if (!ring) {
    return std::unexpected(ring.error());
  }
  if (ring->verification_keys().empty()) {
    return fail(Errc::config, "no verification keys in the keyring; run: claudegate keygen "
                              "(or pass --jwks FILE|URL)");
  }
  return ring->verification_keys();
}

bool is_url(std::string_view jwks) {
  return jwks.starts_with("http://") || jwks.starts_with("https://");
}

// Where verify takes its keys: one fixed set (the keyring or a JWKS file),
// or an IdP's JWKS URL looked up per token by kid (each run is one process,
// so fetched documents are cached under the home's cache/jwks/).
class KeySource {
public:
  static Result<KeySource> open(const VerifyOptions& opt, Context& ctx) {
    KeySource source;
    if (is_url(opt.jwks)) {
      return source.open_remote(opt.jwks, ctx);
    }
    auto keys = opt.jwks.empty() ? keyring_keys(ctx) : jwks::load_file(opt.jwks);
    if (!keys) {
      return std::unexpected(keys.error());
    }
    source.m_fixed = std::make_shared<const keyset::KeySet>(std::move(*keys));
    return source;
  }

  // The fixed set (keyring or JWKS file), safe to share between threads;
  // null for a remote set, which refetches as it goes (use for_token).
  const keyset::KeySet* fixed() const { return m_remote ? nullptr : m_fixed.get(); }

  // The keys for `token`: a remote set is (re)fetched as its kid needs.
  Result<std::shared_ptr<const keyset::KeySet>> for_token(std::string_view token) {
    if (!m_remote) {
      return m_fixed;
    }
    const auto decoded = jws::decode(token); // a malformed token fails in token::verify
    return m_remote->keys_for(decoded ? decoded->kid : std::string{});
  }

private:
  Result<KeySource> open_remote(const std::string& url, Context& ctx) {
    if (auto paths = ctx.paths()) {
      m_disk = std::make_unique<jwks_remote::DiskCache>(paths->home / "cache" / "jwks");
    }
    auto remote = jwks_remote::RemoteKeySet::open(url, ctx.clock(), {}, {}, m_disk.get());
    if (!remote) {
      return std::unexpected(remote.error());
    }
    m_remote = std::move(*remote);
    return std::move(*this);
  }

  std::shared_ptr<const keyset::KeySet> m_fixed;
  std::unique_ptr<jwks_remote::DiskCache> m_disk;
  std::unique_ptr<jwks_remote::RemoteKeySet> m_remote;
};

claims::VerifyPolicy make_policy(const VerifyOptions& opt, const config::Config& cfg) {
  claims::VerifyPolicy policy;
  policy.issuer = opt.issuer.value_or(cfg.issuer);
  policy.audiences = opt.audiences.empty() ? std::vector<std::string>{cfg.audience} : opt.audiences;
  policy.leeway = opt.leeway ? seconds_of(*opt.leeway) : cfg.leeway;
  policy.max_lifetime = cfg.max_access_ttl;
  policy.required_claims = opt.required_claims;
  policy.required_scopes = opt.scopes;
  // An external IdP's tokens (--jwks URL, another issuer) have their
  // revocations under "ISS|…", as serve-local keeps them apart from local subjects.
  if (is_url(opt.jwks) && policy.issuer != cfg.issuer) {
    policy.revocation_namespace = *policy.issuer;
  }
  return policy;
}

// The store for the revocation checks of one thread, opened on its first
// use. No store file yet means nothing was ever revoked: do not create one
// just to read it.
class RevocationStore {
public:
  explicit RevocationStore(Context& ctx) : m_ctx(ctx) {}

  Result<store::Store*> get() {
    if (m_store) {
      return m_store.get();
    }
    auto paths = m_ctx.paths();
    if (!paths) {
      return std::unexpected(paths.error());
    }
    std::error_code ec;
    if (!std::filesystem::exists(paths->db, ec)) {
      return nullptr;
    }
    auto opened = store::open_sqlite(paths->db);
    if (!opened) {
      return std::unexpected(opened.error());
    }
    m_store = std::move(*opened);
    return m_store.get();
  }

private:
  Context& m_ctx;
  std::unique_ptr<store::Store> m_store;
};

// Signature and claims first; only a token that passed them reaches the store.
// With a fixed key source, check may run on several threads at once, each
// with its own RevocationStore.
class TokenChecker {
public:
  TokenChecker(const VerifyOptions& opt, KeySource& keys, claims::VerifyPolicy policy, UnixSeconds now)
      : m_opt(opt), m_keys(keys), m_policy(std::move(policy)), m_now(now) {}

  Result<token::VerifiedToken> check(std::string_view token, RevocationStore& store) {
    if (const keyset::KeySet* fixed = m_keys.fixed()) { // no shared reference count to bump per token
      return check_with(token, *fixed, store);
    }
    const auto keys = m_keys.for_token(token);
    if (!keys) {
      return std::unexpected(keys.error());
    }
    return check_with(token, **keys, store);
  }

  bool parallel_safe() const { return m_keys.fixed() != nullptr; }

private:
  Result<token::VerifiedToken> check_with(std::string_view token, const keyset::KeySet& keys,
                                          RevocationStore& store) {
    if (m_opt.no_revocation) {
      return token::verify(token, keys, m_policy, m_now);
    }
    return revocation::verify_unrevoked(token, keys, m_policy, m_now, [&store] { return store.get(); });
  }

  const VerifyOptions& m_opt;
  KeySource& m_keys;
  claims::VerifyPolicy m_policy;
  UnixSeconds m_now;
};

json::Json result_json(const Result<token::VerifiedToken>& verified) {
  if (!verified) {
    return {
        {"valid", false}, {"code", errc_code(verified.error().code)}, {"error", verified.error().message}};
  }
  return {{"valid", true},
          {"kid", verified->kid},
          {"alg", alg_name(verified->alg)},
          {"claims", verified->claims}};
}

// Appends `text` as a JSON string literal, as dump() writes it: printable
// ASCII but quote and backslash as is, anything else through dump() itself.
void append_json_string(std::string& out, std::string_view text) {
  const bool plain = std::all_of(text.begin(), text.end(),
                                 [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  if (!plain) {
    out += json::Json(text).dump();
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

void append_json(std::string& out, const json::Json& value);

void append_json_container(std::string& out, const json::Json& value) {
  const bool object = value.is_object();
  out += object ? '{' : '[';
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (it != value.begin()) {
      out += ',';
    }
    if (object) {
      append_json_string(out, it.key());
      out += ':';
    }
    append_json(out, *it);
  }
  out += object ? '}' : ']';
}

// Appends `value` as value.dump() writes it (compact, members in the
// object's sorted order): containers, strings, integers and booleans
// directly, floats and null through dump() itself.
void append_json(std::string& out, const json::Json& value) {
  if (value.is_object() || value.is_array()) {
    append_json_container(out, value);
  } else if (value.is_string()) {
    append_json_string(out, value.get_ref<const std::string&>());
  } else if (value.is_number_unsigned()) {
    fmt::format_to(std::back_inserter(out), "{}", value.get<std::uint64_t>());
  } else if (value.is_number_integer()) {
    fmt::format_to(std::back_inserter(out), "{}", value.get<std::int64_t>());
  } else if (value.is_boolean()) {
    out += value.get<bool>() ? "true" : "false";
  } else {
    out += value.dump();
  }
}

// Appends result_json(verified).dump() and a newline to `out`, written
// directly (the same members in the same sorted order) without copying the
// claims into a new object.
void append_result_line(std::string& out, const Result<token::VerifiedToken>& verified) {
  if (!verified) {
    out += R"({"code":)";
    out += json::Json(errc_code(verified.error().code)).dump();
    out += R"(,"error":)";
    out += json::Json(verified.error().message).dump();
    out += ",\"valid\":false}\n";
    return;
  }
  out += R"({"alg":)";
  append_json_string(out, alg_name(verified->alg));
  out += R"(,"claims":)";
  append_json(out, verified->claims);
  out += R"(,"kid":)";
  append_json_string(out, verified->kid);
  out += ",\"valid\":true}\n";
}

// ---- verify --batch -----------------------------------------------------------

// Standard input in large blocks, handed out as chunks of complete lines
// (split at '\n' as std::getline does; a last line without one counts).
// A chunk holds about k_chunk_bytes of input, so memory stays bounded
// whatever the input's length (a single longer line is read whole).
class LineChunks {
public:
  static constexpr std::size_t k_chunk_bytes = 4 * 1024 * 1024;

  // The next chunk's lines, valid until the next call; empty at the end.
  std::vector<std::string_view> next() {
    m_buffer.erase(0, m_consumed);
    m_consumed = 0;
    while (!m_eof && (m_buffer.size() < k_chunk_bytes || m_buffer.find('\n') == std::string::npos)) {
      read_block();
    }
    return split();
  }

private:
  void read_block() {
    constexpr std::size_t k_block = 1024 * 1024;
    const std::size_t old_size = m_buffer.size();
    m_buffer.resize(old_size + k_block);
    ssize_t got = 0;
    do {
      got = ::read(STDIN_FILENO, m_buffer.data() + old_size, k_block);
    } while (got < 0 && errno == EINTR);
    m_eof = got <= 0; // a read error ends the input, as it ends std::getline
    m_buffer.resize(old_size + static_cast<std::size_t>(std::max<ssize_t>(got, 0)));
  }

  std::vector<std::string_view> split() {
    std::vector<std::string_view> lines;
    const std::string_view text = m_buffer;
    std::size_t start = 0;
    for (auto end = text.find('\n'); end != std::string_view::npos; end = text.find('\n', start)) {
      lines.push_back(text.substr(start, end - start));
      start = end + 1;
    }
    if (m_eof && start < text.size()) {
      lines.push_back(text.substr(start));
      start = text.size();
    }
    m_consumed = start;
    return lines;
  }

  std::string m_buffer;
  std::size_t m_consumed = 0;
  bool m_eof = false;
};

// One verifying thread's state: its store and its share of a chunk's output.
// Aligned to a cache line of its own: the threads append to their `out`
// without bouncing a shared line between cores.
struct alignas(64) BatchWorker {
  explicit BatchWorker(Context& ctx) : store(ctx) {}
  RevocationStore store;
  std::string out;
  std::optional<ExitCode> first_failure;
};

void verify_share(TokenChecker& checker, std::span<const std::string_view> lines, BatchWorker& worker) {
  for (const auto line : lines) {
    const auto verified = checker.check(line, worker.store);
    if (!verified && !worker.first_failure) {
      worker.first_failure = exit_code_for(verified.error().code);
    }
    append_result_line(worker.out, verified);
  }
}

// Splits `lines` into one contiguous share per worker (fewer for a short
// chunk), verifies the shares at once, the first on this thread.
void verify_chunk(TokenChecker& checker, std::span<const std::string_view> lines,
                  std::vector<BatchWorker>& workers) {
  constexpr std::size_t k_min_share = 64; // a thread is not worth fewer tokens
  const std::size_t count = std::clamp<std::size_t>(lines.size() / k_min_share, 1, workers.size());
  const std::size_t share = (lines.size() + count - 1) / count;
  std::vector<std::jthread> threads;
  for (std::size_t i = 1; i < count; ++i) {
    const auto part = lines.subspan(std::min(i * share, lines.size()));
    threads.emplace_back(verify_share, std::ref(checker), part.first(std::min(share, part.size())),
                         std::ref(workers[i]));
  }
  verify_share(checker, lines.first(std::min(share, lines.size())), workers[0]);
}

// Verifies one token per stdin line, one JSON result per line, in input
// order; on every core when the keys are fixed (each thread verifies a
// contiguous share of a chunk of lines). A refused token's line
// ({"valid":false,"code":…}) is data on stdout like the others: line N
// answers input line N, which a line moved to stderr would break. Exits
// with the status of the first failure, or failure (1) when stdout cannot
// be written.
ExitCode verify_batch(TokenChecker& checker, Context& ctx) {
  const unsigned cores = checker.parallel_safe() ? std::max(1U, std::thread::hardware_concurrency()) : 1U;
  std::vector<BatchWorker> workers;
  for (unsigned i = 0; i < cores; ++i) {
    workers.emplace_back(ctx);
  }
  std::optional<ExitCode> first_failure;
  LineChunks input;
  for (auto lines = input.next(); !lines.empty(); lines = input.next()) {
    verify_chunk(checker, lines, workers);
    for (auto& worker : workers) {
      first_failure = first_failure ? first_failure : worker.first_failure;
      worker.first_failure.reset();
      if (std::fwrite(worker.out.data(), 1, worker.out.size(), stdout) != worker.out.size()) {
        return ExitCode::failure;
      }
      worker.out.clear();
    }
  }
  return first_failure.value_or(ExitCode::success);
}

// With --json the verdict, valid or not, is the answer asked for and goes to
// stdout, like each line of --batch (exit status as in text mode); a failure
// to verify at all (no token, no keys) is an error on stderr (Context::report).
ExitCode verify_one(const VerifyOptions& opt, Context& ctx, TokenChecker& checker) {
  auto token = token_argument(opt.token);
  if (!token) {
    return ctx.report(token.error(), opt.format);
  }
  RevocationStore store(ctx);
  auto verified = checker.check(*token, store);
  if (opt.format == OutputFormat::json) {
    print_json(result_json(verified), opt.format);
    return verified ? ExitCode::success : exit_code_for(verified.error().code);
  }
  if (!verified) {
    return ctx.report(verified.error());
  }
  print_json(verified->claims, opt.format);
  return ExitCode::success;
}

ExitCode run_verify(const VerifyOptions& opt, Context& ctx) {
  auto cfg = ctx.config();
  auto keys = cfg ? KeySource::open(opt, ctx) : std::unexpected(cfg.error());
  if (!keys) {
    return ctx.report(keys.error(), opt.format);
  }
  const UnixSeconds now = opt.at ? duration::parse_time(*opt.at).value_or(0) : ctx.clock().now();
  TokenChecker checker(opt, *keys, make_policy(opt, **cfg), now);
  if (opt.batch) {
    return verify_batch(checker, ctx);
  }
  return verify_one(opt, ctx, checker);
}

} // namespace

void setup_verify(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<VerifyOptions>();
  auto* cmd =
      app.add_subcommand("verify", "Verify a token: signature, expiry, issuer, audience; prints its claims");
  auto* token = cmd->add_option("token", opt->token, "the token, or - to read it from stdin");
  cmd->add_flag("--batch", opt->batch, "verify one token per stdin line; one JSON result per line")
      ->excludes(token);
  cmd->add_option("--jwks", opt->jwks,
                  "verify with the keys of this JWKS file or https:// URL (an IdP's; cached, refetched "
                  "for an unknown kid at most every 30s) instead of the keyring");
  cmd->add_option("--iss", opt->issuer, "required issuer (default from config: claudegate)");
  cmd->add_option("--aud", opt->audiences, "accepted audience (repeatable, any-of; default from config)")
      ->allow_extra_args(false);
  cmd->add_option("--leeway", opt->leeway, "clock skew allowed for exp/nbf/iat (default 60s)")
      ->check(duration_validator());
  cmd->add_option("--require", opt->required_claims, "claim that must be present (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--scope", opt->scopes, "scope the token must carry (repeatable)")->allow_extra_args(false);
  cmd->add_option("--at", opt->at, "verify as of this time (Unix seconds or RFC 3339)")
      ->check(time_validator());
  cmd->add_flag("--no-revocation", opt->no_revocation, "skip the store's revocation checks (offline checks)");
  add_json_flag(*cmd, opt->format);
  cmd->callback([opt, &ctx] { ctx.set_exit(run_verify(*opt, ctx)); });
}

} // namespace claudegate::app
