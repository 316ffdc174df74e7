// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"
#include "claudegate/jose/keyring.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>

// The gateway's keyring, reloaded when keys/index.json changes so a
// `keygen --rotate` takes effect without a restart.
namespace claudegate::proxy {

class KeyringWatch {
public:
  // Load the keyring in `dir` at `clock`'s time. Fails as Keyring::open.
  static Result<std::unique_ptr<KeyringWatch>> open(const std::filesystem::path& dir, const Clock& clock);

  // The current keyring; reloaded first when index.json's mtime or size
  // changed (looked at no more than every 500 ms). A failed reload keeps the old ring.
  std::shared_ptr<const keyring::Keyring> current();

private:
  struct Stamp {
    std::filesystem::file_time_type mtime{};
    std::uintmax_t size = 0;
    bool operator==(const Stamp&) const = default;
  };

  KeyringWatch(std::filesystem::path dir, const Clock& clock) : m_dir(std::move(dir)), m_clock(clock) {}
  Stamp stamp() const;
  void reload_if_changed();

  std::filesystem::path m_dir;
  const Clock& m_clock;
  std::mutex m_mutex;
  std::shared_ptr<const keyring::Keyring> m_ring;
  Stamp m_stamp;
  std::chrono::steady_clock::time_point m_checked;
};

} // namespace claudegate::proxy
