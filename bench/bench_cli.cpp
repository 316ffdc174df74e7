// SPDX-License-Identifier: Apache-2.0
// The claudegate binary as a whole process, next to a reference measured in
// the same run:
//
//   bench_cli batch CLAUDEGATE HOME N ROUNDS
//       mints up to 20 000 distinct tokens with HOME's active key through the
//       library (all cores) and repeats them to N lines (verify --batch keeps
//       no cache: every line is verified afresh), then times `claudegate
//       --home HOME verify --batch --no-revocation` over them (stdin from the
//       file, stdout to /dev/null; one thread per core) next to token::verify
//       over the same lines in this process, one thread; best of ROUNDS
//       interleaved runs each. The figure compares tokens per CPU-second (the
//       rate per core, robust to a busy machine and to the thread count).
//   bench_cli cold-start CLAUDEGATE HOME RUNS
//       `claudegate --home HOME verify TOKEN` against `openssl version`, each a
//       whole process (spawn to exit), best of RUNS interleaved runs each.
//   bench_cli prune CLAUDEGATE HOME ROWS
//       seeds ROWS expired deny-list rows (plus 1 000 live ones) straight into
//       HOME's store with SQL, then times `claudegate --home HOME revoke --prune`
//       once and checks that exactly the live rows are left.
//
// Each prints a markdown table and "RESULT <id> <figure> <unit> <measured>
// <reference>" lines for bench/summarize.py.
#include <claudegate/base/home.hpp>
#include <claudegate/jose/keyring.hpp>
#include <claudegate/jose/token.hpp>
#include <claudegate/store/sqlite.hpp>
#include <claudegate/store/store.hpp>

#include <fmt/core.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

using namespace claudegate;

namespace {

using SteadyClock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  fmt::print(stderr, "bench_cli: {}\n", what);
  std::exit(1);
}

// ---- child processes ------------------------------------------------------------

struct ProcessTime {
  double wall_s = 0;
  double cpu_s = 0; // user + system of the child
};

double seconds_of(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

// Run `argv` (looked up in PATH) with stdin from `input` ("" = /dev/null) and
// stdout to /dev/null; dies unless it exits 0.
ProcessTime run(const std::vector<std::string>& argv, const std::string& input = "") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, input.empty() ? "/dev/null" : input.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const auto& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = 0;
  const auto start = SteadyClock::now();
  const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    die(fmt::format("cannot start {}", argv[0]));
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  const std::chrono::duration<double> wall = SteadyClock::now() - start;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    die(fmt::format("{} {} failed (status {})", argv[0], argv.size() > 3 ? argv[3] : "", status));
  }
  return {wall.count(), seconds_of(usage.ru_utime) + seconds_of(usage.ru_stime)};
}

// ---- the home's signing key -------------------------------------------------------

keyring::Keyring open_keyring(const std::string& home, UnixSeconds now) {
  home::Overrides overrides;
  overrides.home = home;
  auto paths = home::resolve(overrides);
  auto ring = paths ? keyring::Keyring::open(paths->keys_dir, now) : std::unexpected(paths.error());
  if (!ring) {
    die(ring.error().message);
  }
  return std::move(*ring);
}

const keys::Key& signer_of(const keyring::Keyring& ring) {
  auto signer = ring.signer();
  if (!signer) {
    die(signer.error().message);
  }
  return **signer;
}

std::string mint(const keys::Key& key, UnixSeconds now, RandomSource& rng) {
  token::AccessTokenRequest request;
  request.subject = "bench-batch";
  request.plan = "pro";
  auto issued = token::issue(request, key, now, rng);
  if (!issued) {
    die(issued.error().message);
  }
  return issued->token;
}

// `count` distinct tokens signed by `key`, minted on every core.
std::vector<std::string> mint_many(const keys::Key& key, std::size_t count, UnixSeconds now) {
  std::vector<std::string> tokens(count);
  const std::size_t workers = std::max(1U, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      SystemRandom rng;
      for (std::size_t i = w; i < count; i += workers) {
        tokens[i] = mint(key, now, rng);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  return tokens;
}

// ---- batch ---------------------------------------------------------------------------

double thread_cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// The time token::verify takes over every token, on this thread; dies on a failure.
ProcessTime verify_in_process(const std::vector<std::string>& tokens, const keyset::KeySet& keys,
                              UnixSeconds now) {
  const claims::VerifyPolicy policy;
  const auto start = SteadyClock::now();
  const double cpu_start = thread_cpu_s();
  for (const auto& t : tokens) {
    if (auto verified = token::verify(t, keys, policy, now); !verified) {
      die("in-process verify failed: " + verified.error().message);
    }
  }
  return {std::chrono::duration<double>(SteadyClock::now() - start).count(), thread_cpu_s() - cpu_start};
}

ProcessTime faster(const ProcessTime& a, const ProcessTime& b) {
  return a.cpu_s < b.cpu_s ? a : b;
}

std::string write_tokens(const std::vector<std::string>& tokens, const std::string& home) {
  const std::string path = home + "/bench-tokens.txt";
  std::ofstream out(path);
  for (const auto& t : tokens) {
    out << t << '\n';
  }
  if (!out.flush()) {
    die("cannot write " + path);
  }
  return path;
}

// RSA-2048 signing is slow (~700 per core-second here): minting 100 000
// distinct tokens took minutes of the bench's ten; repeats are as honest.
constexpr std::size_t k_max_distinct_tokens = 20000;

// `distinct` repeated in order until there are `count` lines.
std::vector<std::string> repeat_to(const std::vector<std::string>& distinct, std::size_t count) {
  std::vector<std::string> lines;
  lines.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    lines.push_back(distinct[i % distinct.size()]);
  }
  return lines;
}

void print_batch(const ProcessTime& in, const ProcessTime& cli, std::size_t count, unsigned threads) {
  const double n = static_cast<double>(count);
  fmt::print(
      "| path | wall s | CPU s | cores busy (CPU / wall) | tokens per CPU-second |\n|---|---|---|---|---|\n");
  fmt::print("| token::verify in process (one thread) | {:.2f} | {:.2f} | {:.2f} | {:.0f} |\n", in.wall_s,
             in.cpu_s, in.cpu_s / in.wall_s, n / in.cpu_s);
  fmt::print("| claudegate verify --batch (whole process, {} threads, JSON to /dev/null) | {:.2f} | {:.2f} | "
             "{:.2f} | {:.0f} |\n",
             threads, cli.wall_s, cli.cpu_s, cli.cpu_s / cli.wall_s, n / cli.cpu_s);
  fmt::print("RESULT batch.RS256 {:.1f} % \"verify --batch {:.0f} tokens per CPU-second ({:.0f}/s wall, {} "
             "threads)\" \"token::verify in process {:.0f} per CPU-second\"\n",
             100.0 * in.cpu_s / cli.cpu_s, n / cli.cpu_s, n / cli.wall_s, threads, n / in.cpu_s);
}

int bench_batch(const std::string& cg, const std::string& home, std::size_t count, int rounds) {
  const UnixSeconds now = std::time(nullptr);
  const keyring::Keyring ring = open_keyring(home, now);
  const auto mint_start = SteadyClock::now();
  const auto distinct = mint_many(signer_of(ring), std::min(count, k_max_distinct_tokens), now);
  const std::chrono::duration<double> minting = SteadyClock::now() - mint_start;
  const auto lines = repeat_to(distinct, count);
  const std::string file = write_tokens(lines, home);
  ProcessTime best_in{1e9, 1e9};
  ProcessTime best_cli{1e9, 1e9};
  for (int i = 0; i < rounds; ++i) {
    best_in = faster(best_in, verify_in_process(lines, ring.verification_keys(), now));
    best_cli = faster(best_cli, run({cg, "--home", home, "verify", "--batch", "--no-revocation"}, file));
  }
  // verify --batch verifies on one thread per core (std::thread::hardware_concurrency).
  const unsigned threads = std::max(1U, std::thread::hardware_concurrency());
  fmt::print("{} lines: {} distinct RS256 tokens minted through the library in {:.1f} s, repeated in order "
             "(verify --batch keeps no cache, so every line is verified afresh); best of {} interleaved runs "
             "(by CPU time), --no-revocation; the in-process path is token::verify on one thread, verify "
             "--batch uses {} threads (one per core)\n\n",
             count, distinct.size(), minting.count(), rounds, threads);
  print_batch(best_in, best_cli, count, threads);
  return 0;
}

// ---- cold start ------------------------------------------------------------------

int bench_cold_start(const std::string& cg, const std::string& home, int runs) {
  const UnixSeconds now = std::time(nullptr);
  SystemRandom rng;
  const std::string token = mint(signer_of(open_keyring(home, now)), now, rng);
  double best_cg = 1e9;
  double best_ssl = 1e9;
  for (int i = 0; i < runs; ++i) {
    best_ssl = std::min(best_ssl, run({"openssl", "version"}).wall_s);
    best_cg = std::min(best_cg, run({cg, "--home", home, "verify", token}).wall_s);
  }
  fmt::print("best of {} interleaved runs each, spawn to exit, stdout to /dev/null (the home has a key and "
             "no store file, so no revocation lookup)\n\n",
             runs);
  fmt::print(
      "| process | ms |\n|---|---|\n| openssl version | {:.2f} |\n| claudegate verify TOKEN | {:.2f} |\n",
      best_ssl * 1e3, best_cg * 1e3);
  fmt::print(
      "RESULT coldstart {:.2f} x \"claudegate verify TOKEN {:.2f} ms\" \"openssl version {:.2f} ms\"\n",
      best_cg / best_ssl, best_cg * 1e3, best_ssl * 1e3);
  return 0;
}

// ---- prune -------------------------------------------------------------------------

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using Db = std::unique_ptr<sqlite3, DbClose>;

Db open_db(const std::string& path) {
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    die(fmt::format("cannot open {}", path));
  }
  return Db(raw);
}

void exec(sqlite3* db, const std::string& sql) {
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    die(fmt::format("{}: {}", sql, sqlite3_errmsg(db)));
  }
}

std::int64_t count_rows(sqlite3* db) {
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM revoked_jtis", -1, &s, nullptr);
  const std::int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  return n;
}

constexpr std::int64_t k_live_rows = 1000;

// `rows` jtis expired an hour or more ago and k_live_rows unexpired ones, as
// `revoke` writes them (one recursive INSERT … SELECT; the epoch trigger fires per row).
void seed_revoked(const std::string& path, std::int64_t rows, UnixSeconds now) {
  if (auto store = store::open_sqlite(path); !store) { // creates the schema
    die(store.error().message);
  }
  Db db = open_db(path);
  const auto insert = [&](std::int64_t n, const char* prefix, UnixSeconds expires) {
    exec(db.get(), fmt::format("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) "
                               "INSERT INTO revoked_jtis (jti, subject, reason, revoked_at, expires_at) "
                               "SELECT '{}' || i, 'user-' || (i % 200), 'bench', {}, {} - (i % 1000) FROM n",
                               n, prefix, now - 7200, expires));
  };
  exec(db.get(), "BEGIN");
  insert(rows, "bench-expired-", now - 3600);
  insert(k_live_rows, "bench-live-", now + 7200);
  exec(db.get(), "COMMIT");
  exec(db.get(), "PRAGMA wal_checkpoint(TRUNCATE)");
}

int bench_prune(const std::string& cg, const std::string& home, std::int64_t rows) {
  const UnixSeconds now = std::time(nullptr);
  const std::string db = home + "/claudegate.db";
  const auto seed_start = SteadyClock::now();
  seed_revoked(db, rows, now);
  const std::chrono::duration<double> seeding = SteadyClock::now() - seed_start;
  const auto t = run({cg, "--home", home, "--db", db, "revoke", "--prune"});
  const std::int64_t left = count_rows(open_db(db).get());
  fmt::print(
      "{} expired + {} live deny-list rows seeded with SQL in {:.1f} s; one run of the whole process\n\n",
      rows, k_live_rows, seeding.count());
  fmt::print("| command | ms | rows left |\n|---|---|---|\n| claudegate revoke --prune | {:.0f} | {} |\n",
             t.wall_s * 1e3, left);
  if (left != k_live_rows) {
    die(fmt::format("prune left {} rows, not the {} live ones", left, k_live_rows));
  }
  fmt::print("RESULT store.prune {:.0f} ms \"revoke --prune deleted {} rows\" \"-\"\n", t.wall_s * 1e3, rows);
  return 0;
}

long long number(const char* text) {
  char* end = nullptr;
  const long long n = std::strtoll(text, &end, 10);
  if (*end != '\0' || n <= 0) {
    die(fmt::format("expected a positive number, not \"{}\"", text));
  }
  return n;
}

} // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 5 && args[0] == "batch") {
    return bench_batch(args[1], args[2], static_cast<std::size_t>(number(argv[4])),
                       static_cast<int>(number(argv[5])));
  }
  if (args.size() == 4 && args[0] == "cold-start") {
    return bench_cold_start(args[1], args[2], static_cast<int>(number(argv[4])));
  }
  if (args.size() == 4 && args[0] == "prune") {
    return bench_prune(args[1], args[2], number(argv[4]));
  }
  die("usage: bench_cli batch CLAUDEGATE HOME N ROUNDS | cold-start CLAUDEGATE HOME RUNS | "
      "prune CLAUDEGATE HOME ROWS");
}
