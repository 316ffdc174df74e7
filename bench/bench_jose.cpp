// SPDX-License-Identifier: Apache-2.0
// Verify and issue per algorithm, next to the raw OpenSSL verify/sign rate of
// the same key and signing input, measured interleaved in the same run; then
// RS256 verify with revocation on, uncached and through VerifiedCache. Besides
// the tables it prints one "RESULT <id> <figure> <unit> <measured> <reference>"
// line per performance target (bench/summarize.py collects them).
#include <claudegate/jose/jws.hpp>
#include <claudegate/jose/token.hpp>
#include <claudegate/store/revocation.hpp>
#include <claudegate/store/revocation_watch.hpp>
#include <claudegate/store/sqlite.hpp>
#include <claudegate/store/store.hpp>
#include <claudegate/store/verified_cache.hpp>

#include <fmt/core.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace claudegate;

namespace {

using Clock = std::chrono::steady_clock;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

const EVP_MD* digest_of(keys::Alg alg) {
  switch (alg) {
  case keys::Alg::RS384:
  case keys::Alg::ES384:
    return EVP_sha384();
  case keys::Alg::RS512:
    return EVP_sha512();
  case keys::Alg::EdDSA:
    return nullptr;
  default:
    return EVP_sha256();
  }
}

// The reference: one EVP_DigestSign/Verify with a fresh context, as any
// OpenSSL program verifying one message does.
bool raw_op(const keys::Key& key, std::string_view input, std::string& sig, bool sign) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  const int init = sign ? EVP_DigestSignInit(ctx.get(), &pctx, digest_of(key.alg()), nullptr, key.evp())
                        : EVP_DigestVerifyInit(ctx.get(), &pctx, digest_of(key.alg()), nullptr, key.evp());
  if (init != 1) {
    return false;
  }
  if (key.alg() == keys::Alg::PS256) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  if (!sign) {
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(), in,
                            input.size())
           == 1;
  }
  std::size_t len = 0;
  EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size());
  sig.resize(len);
  const bool ok =
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in, input.size()) == 1;
  sig.resize(len);
  return ok;
}

bool raw_hmac(const keys::Key& key, std::string_view input, std::string& mac) {
  mac.resize(32);
  std::size_t len = 0;
  return EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.secret().data(), key.secret().size(),
                   reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                   reinterpret_cast<unsigned char*>(mac.data()), mac.size(), &len)
         != nullptr;
}

// CPU time this thread has used: time the scheduler gives to other processes
// on this shared machine is not counted against either side.
double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// `count` calls of `op`, in CPU seconds of this thread; exits if one fails.
double timed_batch(const std::function<bool()>& op, int count) {
  const double start = thread_cpu_seconds();
  for (int i = 0; i < count; ++i) {
    if (!op()) {
      std::fputs("bench: an operation failed\n", stderr);
      std::exit(1);
    }
  }
  return thread_cpu_seconds() - start;
}

// Calls of `op` that take about 2 ms of CPU: long enough that reading the
// clock is noise, short enough that both sides alternate many times a slice.
int batch_size(const std::function<bool()>& op) {
  constexpr double k_batch_seconds = 0.002;
  constexpr int k_probe = 4;
  const double per_op = timed_batch(op, k_probe) / k_probe;
  return std::clamp(static_cast<int>(k_batch_seconds / std::max(per_op, 1e-9)), 1, 4096);
}

struct Tally {
  long ops = 0;
  double cpu = 0;
  void add(const std::function<bool()>& op, int count) {
    cpu += timed_batch(op, count);
    ops += count;
  }
  double rate() const { return static_cast<double>(ops) / cpu; }
};

// Rates (operations per CPU-second) of `reference` and `ours` over `rounds`
// rounds of about 2 × `seconds` wall time, the two alternating batch by
// batch throughout, so a burst of load on the machine hits both alike; each
// rate is over all its batches (a best-of per side would let one lucky
// moment on one side decide the ratio).
std::pair<double, double> side_by_side(const std::function<bool()>& reference,
                                       const std::function<bool()>& ours, int rounds, double seconds) {
  const int reference_batch = batch_size(reference);
  const int our_batch = batch_size(ours);
  Tally ref_tally;
  Tally our_tally;
  const auto end = Clock::now() + std::chrono::duration<double>(2 * rounds * seconds);
  while (Clock::now() < end) {
    ref_tally.add(reference, reference_batch);
    our_tally.add(ours, our_batch);
  }
  return {ref_tally.rate(), our_tally.rate()};
}

struct Fixture {
  keys::Key key;
  keyset::KeySet keys;
  std::string token;
  jws::DecodedToken decoded;
  std::string raw_signature; // what the raw reference verifies (DER for ECDSA)
};

Fixture make_fixture(keys::Alg alg, UnixSeconds now, RandomSource& rng) {
  auto key = keys::Key::generate(alg).value();
  keyset::KeySet keys;
  keys.add(key);
  token::AccessTokenRequest request;
  request.subject = "bench-user";
  request.plan = "pro";
  auto issued = token::issue(request, key, now, rng).value();
  auto decoded = jws::decode(issued.token).value();
  std::string raw_signature;
  if (alg == keys::Alg::HS256) {
    raw_hmac(key, decoded.signing_input, raw_signature);
  } else {
    raw_op(key, decoded.signing_input, raw_signature, true);
  }
  return {key, keys, issued.token, decoded, raw_signature};
}

struct AlgRates {
  double raw_verify;
  double verify;
  double raw_sign;
  double issue;
};

AlgRates bench_alg(keys::Alg alg, int rounds, double seconds) {
  SystemRandom rng;
  const UnixSeconds now = SystemClock{}.now();
  Fixture f = make_fixture(alg, now, rng);
  const claims::VerifyPolicy policy;
  const bool hmac = alg == keys::Alg::HS256;
  std::string scratch = f.raw_signature;
  auto raw_verify = [&] {
    if (hmac) {
      std::string mac;
      return raw_hmac(f.key, f.decoded.signing_input, mac) && mac == f.raw_signature;
    }
    return raw_op(f.key, f.decoded.signing_input, scratch, false);
  };
  auto our_verify = [&] { return token::verify(f.token, f.keys, policy, now).has_value(); };
  auto raw_sign = [&] {
    std::string sig;
    return hmac ? raw_hmac(f.key, f.decoded.signing_input, sig)
                : raw_op(f.key, f.decoded.signing_input, sig, true);
  };
  token::AccessTokenRequest request;
  request.subject = "bench-user";
  request.plan = "pro";
  auto our_issue = [&] { return token::issue(request, f.key, now, rng).has_value(); };
  const auto [rv, ov] = side_by_side(raw_verify, our_verify, rounds, seconds);
  const auto [rs, os] = side_by_side(raw_sign, our_issue, rounds, seconds);
  fmt::print("| {:<6} | {:>12.0f} | {:>12.0f} | {:>5.1f}% | {:>12.0f} | {:>12.0f} | {:>5.1f}% |\n",
             alg_name(alg), rv, ov, 100.0 * ov / rv, rs, os, 100.0 * os / rs);
  return {rv, ov, rs, os};
}

// One machine-readable line for bench/summarize.py: `id`, `ours` as a
// percentage of `reference`, and both rates described.
void print_result(std::string_view id, double reference, double ours, std::string_view our_name,
                  std::string_view reference_name) {
  fmt::print("RESULT {} {:.1f} % \"{} {:.0f}/s\" \"{} {:.0f}/s\"\n", id, 100.0 * ours / reference, our_name,
             ours, reference_name, reference);
}

// A scratch folder for the revocation store, removed on exit; on tmpfs when
// there is one, so seeding is not bound by fsync (lookups are reads either way).
class ScratchDir {
public:
  ScratchDir() {
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                           ? std::filesystem::path("/dev/shm")
                                           : std::filesystem::temp_directory_path();
    std::string pattern = (base / "claudegate-bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::fputs("bench: cannot create a scratch folder\n", stderr);
      std::exit(1);
    }
    m_path = pattern;
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() { std::filesystem::remove_all(m_path); }
  const std::filesystem::path& path() const { return m_path; }

private:
  std::filesystem::path m_path;
};

// `count` unrelated jtis deny-listed through the store API, as `revoke` does.
std::unique_ptr<store::Store> seeded_store(const std::filesystem::path& path, int count, UnixSeconds now) {
  auto store = store::open_sqlite(path).value();
  for (int i = 0; i < count; ++i) {
    const auto jti = "bench-revoked-" + std::to_string(i);
    if (!store->revoke_jti(jti, now + 3600, "someone-else", "bench", now)) {
      std::fputs("bench: seeding the revocation store failed\n", stderr);
      std::exit(1);
    }
  }
  return store;
}

// RS256 verify with the revocation check against a store of `revoked` jtis,
// next to the raw verify of the same key and input.
void bench_revocation(int revoked, int rounds, double seconds) {
  SystemRandom rng;
  const UnixSeconds now = SystemClock{}.now();
  Fixture f = make_fixture(keys::Alg::RS256, now, rng);
  const ScratchDir dir;
  const auto seed_start = Clock::now();
  auto store = seeded_store(dir.path() / "claudegate.db", revoked, now);
  const std::chrono::duration<double> seeding = Clock::now() - seed_start;
  const claims::VerifyPolicy policy;
  std::string scratch = f.raw_signature;
  auto raw_verify = [&] { return raw_op(f.key, f.decoded.signing_input, scratch, false); };
  auto our_verify = [&] {
    return revocation::verify_unrevoked(f.token, f.keys, policy, now, store.get()).has_value();
  };
  verified_cache::VerifiedCache cache(1024);
  auto watch = store::RevocationWatch::start(*store); // as serve-local follows the epoch
  if (!watch) {
    fmt::print(stderr, "bench: revocation watch: {}\n", watch.error().message);
    std::exit(1);
  }
  auto cached_verify = [&] {
    return cache.verify(f.token, f.keys, policy, now, store.get(), **watch).has_value();
  };
  const auto [rv, ov] = side_by_side(raw_verify, our_verify, rounds, seconds);
  const auto [rc, oc] = side_by_side(raw_verify, cached_verify, rounds, seconds);
  fmt::print("\nRS256 verify with revocation on (SQLite, {} revoked jtis, seeded in {:.1f}s); cached = "
             "verified_cache::VerifiedCache, the same token again (a hit reads the revocation epoch a "
             "RevocationWatch follows, as serve-local does):\n\n",
             revoked, seeding.count());
  fmt::print("| path                     | raw verify/s |  verify/s    | ratio   |\n");
  fmt::print("|--------------------------|--------------|--------------|---------|\n");
  fmt::print("| verify_unrevoked         | {:>12.0f} | {:>12.0f} | {:>6.1f}% |\n", rv, ov, 100.0 * ov / rv);
  fmt::print("| VerifiedCache (cached)   | {:>12.0f} | {:>12.0f} | {:>6.1f}% |\n", rc, oc, 100.0 * oc / rc);
  fmt::print("\n(cache: {} hits, {} misses)\n", cache.hits(), cache.misses());
  print_result("verify.revocation", rv, ov, "verify_unrevoked", "raw EVP_DigestVerify");
  print_result("verify.cached", rc, oc, "VerifiedCache::verify", "raw EVP_DigestVerify");
}

// RESULT lines: verify for the algorithms with a performance goal, issue for all.
void print_alg_results(const std::vector<std::pair<keys::Alg, AlgRates>>& rates) {
  for (const auto& [alg, r] : rates) {
    const std::string name(alg_name(alg));
    if (alg == keys::Alg::RS256 || alg == keys::Alg::ES256 || alg == keys::Alg::EdDSA) {
      print_result("verify." + name, r.raw_verify, r.verify, "token::verify", "raw EVP_DigestVerify");
    }
    print_result("issue." + name, r.raw_sign, r.issue, "token::issue",
                 alg == keys::Alg::HS256 ? "raw HMAC" : "raw EVP_DigestSign");
  }
}

} // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.3;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  fmt::print("claudegate JOSE benchmark: {} rounds of {:.2f}s per side; the reference and ours alternate in "
             "~2 ms batches throughout; rates per CPU-second of the one thread over all batches\n",
             rounds, seconds);
  fmt::print("verify = token::verify (decode, kid lookup, signature, claims; no revocation)\n");
  fmt::print("issue  = token::issue (claims, jti, JSON, base64url, signature)\n\n");
  fmt::print("| alg    | raw verify/s |  verify/s    | ratio  |  raw sign/s  |  issue/s     | ratio  |\n");
  fmt::print("|--------|--------------|--------------|--------|--------------|--------------|--------|\n");
  std::vector<std::pair<keys::Alg, AlgRates>> rates;
  for (const keys::Alg alg : keys::all_algs()) {
    rates.emplace_back(alg, bench_alg(alg, rounds, seconds));
  }
  print_alg_results(rates);
  constexpr int k_revoked = 100000;
  bench_revocation(k_revoked, rounds, seconds);
  return 0;
}
