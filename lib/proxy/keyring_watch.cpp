// SPDX-License-Identifier: Apache-2.0
#include "keyring_watch.hpp"

namespace claudegate::proxy {

namespace {

constexpr auto k_check_interval = std::chrono::milliseconds(500);

} // namespace

Result<std::unique_ptr<KeyringWatch>> KeyringWatch::open(const std::filesystem::path& dir,
                                                         const Clock& clock) {
  std::unique_ptr<KeyringWatch> watch(new KeyringWatch(dir, clock));
  watch->m_stamp = watch->stamp();
  auto ring = keyring::Keyring::open(dir, clock.now());
  if (!ring) {
    return propagate(ring);
  }
  watch->m_ring = std::make_shared<const keyring::Keyring>(std::move(*ring));
  watch->m_checked = std::chrono::steady_clock::now();
  return watch;
}

KeyringWatch::Stamp KeyringWatch::stamp() const {
  std::error_code ec;
  const auto index = m_dir / "index.json";
  Stamp out;
  out.mtime = std::filesystem::last_write_time(index, ec);
  out.size = ec ? 0 : std::filesystem::file_size(index, ec);
  return out;
}

void KeyringWatch::reload_if_changed() {
  const auto now = std::chrono::steady_clock::now();
  if (now - m_checked < k_check_interval) {
    return;
  }
  m_checked = now;
  const Stamp seen = stamp();
  if (seen == m_stamp) {
    return;
  }
  auto ring = keyring::Keyring::open(m_dir, m_clock.now());
  if (ring) {
    m_ring = std::make_shared<const keyring::Keyring>(std::move(*ring));
    m_stamp = seen;
  }
}

std::shared_ptr<const keyring::Keyring> KeyringWatch::current() {
  const std::lock_guard lock(m_mutex);
  reload_if_changed();
  return m_ring;
}

} // namespace claudegate::proxy
