// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace claudegate {

using UnixSeconds = std::int64_t;

// Source of the current time; tests pin it with FixedClock.
class Clock {
public:
  virtual ~Clock() = default;
  virtual UnixSeconds now() const = 0;
};

class SystemClock final : public Clock {
public:
  UnixSeconds now() const override;
};

class FixedClock final : public Clock {
public:
  explicit FixedClock(UnixSeconds t) : m_now(t) {}
  UnixSeconds now() const override { return m_now; }
  void set(UnixSeconds t) { m_now = t; }

private:
  UnixSeconds m_now;
};

// Source of random bytes; tests may substitute a deterministic one.
class RandomSource {
public:
  virtual ~RandomSource() = default;
  // Fill `out` with random bytes; aborts (programmer/OS failure) if the
  // system CSPRNG cannot deliver.
  virtual void fill(std::span<unsigned char> out) = 0;
  // `n` random bytes as a byte string.
  std::string bytes(std::size_t n);
};

// OpenSSL's CSPRNG (RAND_bytes).
class SystemRandom final : public RandomSource {
public:
  void fill(std::span<unsigned char> out) override;
};

} // namespace claudegate
