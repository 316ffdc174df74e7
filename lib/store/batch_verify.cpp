// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/batch_verify.hpp"

#include "claudegate/jose/jws.hpp"
#include "claudegate/store/open.hpp"
#include "claudegate/store/revocation.hpp"
#include "claudegate/store/sqlite.hpp"

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

namespace claudegate::batch_verify {

namespace {

// The input read in large blocks, handed out as chunks of complete lines
// (split at '\n' as std::getline does; a last line without one counts).
// A chunk holds about `chunk_bytes` of input, so memory stays bounded
// whatever the input's length (a single longer line is read whole).
class LineChunks {
public:
  LineChunks(const Reader& input, std::size_t chunk_bytes) : m_input(input), m_chunk_bytes(chunk_bytes) {}

  // The next chunk's lines, valid until the next call; empty at the end.
  std::vector<std::string_view> next() {
    m_buffer.erase(0, m_consumed);
    m_consumed = 0;
    while (!m_eof && (m_buffer.size() < m_chunk_bytes || m_buffer.find('\n') == std::string::npos)) {
      read_block();
    }
    return split();
  }

private:
  void read_block() {
    constexpr std::size_t k_block = 1024 * 1024;
    const std::size_t old_size = m_buffer.size();
    m_buffer.resize(old_size + k_block);
    const std::size_t got = m_input(std::span<char>(m_buffer.data() + old_size, k_block));
    m_eof = got == 0;
    m_buffer.resize(old_size + got);
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

  const Reader& m_input;
  std::size_t m_chunk_bytes;
  std::string m_buffer;
  std::size_t m_consumed = 0;
  bool m_eof = false;
};

// One verifying thread's state: its store and its share of a chunk's output.
// Aligned to a cache line of its own: the threads append to their `out`
// without bouncing a shared line between cores.
struct alignas(64) Worker {
  explicit Worker(const StoreOpener& open_store) : store(open_store) {}
  LazyStore store;
  std::string out;
  std::optional<Errc> first_failure;
};

void verify_share(TokenChecker& checker, std::span<const std::string_view> lines, Worker& worker) {
  for (const auto line : lines) {
    const auto verified = checker.check(line, worker.store);
    if (!verified && !worker.first_failure) {
      worker.first_failure = verified.error().code;
    }
    append_result_line(worker.out, verified);
  }
}

// Splits `lines` into one contiguous share per worker (fewer for a short
// chunk), verifies the shares at once, the first on this thread.
void verify_chunk(TokenChecker& checker, std::span<const std::string_view> lines,
                  std::vector<Worker>& workers) {
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

} // namespace

KeySource::KeySource(std::shared_ptr<const keyset::KeySet> fixed) : m_fixed(std::move(fixed)) {
}

KeySource::KeySource(std::unique_ptr<jwks_remote::RemoteKeySet> remote,
                     std::unique_ptr<jwks_remote::DiskCache> disk)
    : m_disk(std::move(disk)), m_remote(std::move(remote)) {
}

Result<std::shared_ptr<const keyset::KeySet>> KeySource::for_token(std::string_view token) {
  if (!m_remote) {
    return m_fixed;
  }
  const auto decoded = jws::decode(token); // a malformed token fails in token::verify
  return m_remote->keys_for(decoded ? decoded->kid : std::string{});
}

Result<std::unique_ptr<store::Store>> open_existing_sqlite(const std::filesystem::path& db) {
  std::error_code ec;
  if (!std::filesystem::exists(db, ec)) {
    return nullptr;
  }
  return store::open_sqlite(db);
}

Result<std::unique_ptr<store::Store>> open_existing(const store::StoreLocation& location) {
  if (location.backend == store::StoreLocation::Backend::sqlite) {
    return open_existing_sqlite(location.path);
  }
  return store::open_store(location);
}

Result<store::RevocationStore*> LazyStore::get() {
  if (m_store) {
    return m_store.get();
  }
  auto opened = m_open();
  if (!opened) {
    return propagate(opened);
  }
  m_store = std::move(*opened);
  return m_store.get();
}

Result<token::VerifiedToken> TokenChecker::check(std::string_view token, LazyStore& store) {
  if (const keyset::KeySet* fixed = m_keys.fixed()) { // no shared reference count to bump per token
    return check_with(token, *fixed, store);
  }
  const auto keys = m_keys.for_token(token);
  if (!keys) {
    return propagate(keys);
  }
  return check_with(token, **keys, store);
}

Result<token::VerifiedToken> TokenChecker::check_with(std::string_view token, const keyset::KeySet& keys,
                                                      LazyStore& store) {
  if (!m_check_revocation) {
    return token::verify(token, keys, m_policy, m_now);
  }
  return revocation::verify_unrevoked(token, keys, m_policy, m_now, [&store] { return store.get(); });
}

json::Json result_document(const Result<token::VerifiedToken>& verified) {
  if (!verified) {
    return {
        {"valid", false}, {"code", errc_code(verified.error().code)}, {"error", verified.error().message}};
  }
  return {{"valid", true},
          {"kid", verified->kid},
          {"alg", alg_name(verified->alg)},
          {"claims", verified->claims}};
}

// The members in the document's sorted order, as its dump() writes them.
void append_result_line(std::string& out, const Result<token::VerifiedToken>& verified) {
  json::ObjectWriter line(out);
  if (!verified) {
    line.string("code", errc_code(verified.error().code));
    line.string_lossy("error", verified.error().message);
    line.boolean("valid", false);
  } else {
    line.string("alg", alg_name(verified->alg));
    line.value("claims", verified->claims);
    line.string_lossy("kid", verified->kid);
    line.boolean("valid", true);
  }
  line.close();
  out += '\n';
}

Reader fd_reader(int fd) {
  return [fd](std::span<char> buffer) -> std::size_t {
    ssize_t got = 0;
    do {
      got = ::read(fd, buffer.data(), buffer.size());
    } while (got < 0 && errno == EINTR);
    return static_cast<std::size_t>(
        std::max<ssize_t>(got, 0)); // an error ends the input, as for std::getline
  };
}

BatchOutcome run(TokenChecker& checker, const Reader& input, const Writer& output,
                 const StoreOpener& open_store, const BatchOptions& options) {
  const unsigned threads = checker.parallel_safe() ? std::max(1U, options.threads) : 1U;
  std::vector<Worker> workers;
  workers.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    workers.emplace_back(open_store);
  }
  BatchOutcome outcome;
  LineChunks chunks(input, options.chunk_bytes);
  for (auto lines = chunks.next(); !lines.empty(); lines = chunks.next()) {
    verify_chunk(checker, lines, workers);
    for (auto& worker : workers) {
      outcome.first_failure = outcome.first_failure ? outcome.first_failure : worker.first_failure;
      worker.first_failure.reset();
      if (!output(worker.out)) {
        outcome.write_failed = true;
        return outcome;
      }
      worker.out.clear();
    }
  }
  return outcome;
}

} // namespace claudegate::batch_verify
