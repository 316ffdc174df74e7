// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/clock.hpp"

#include <openssl/rand.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>

namespace claudegate {

UnixSeconds SystemClock::now() const {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

std::string RandomSource::bytes(std::size_t n) {
  std::string out(n, '\0');
  fill({reinterpret_cast<unsigned char*>(out.data()), out.size()});
  return out;
}

void SystemRandom::fill(std::span<unsigned char> out) {
  // RAND_bytes takes an int; callers ask for small amounts, but chunk anyway.
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t chunk = std::min<std::size_t>(out.size() - done, INT_MAX);
    if (RAND_bytes(out.data() + done, static_cast<int>(chunk)) != 1) {
      // Without randomness no token or key is safe to produce.
      std::fputs("claudegate: fatal: the system random generator failed\n", stderr);
      std::abort();
    }
    done += chunk;
  }
}

} // namespace claudegate
