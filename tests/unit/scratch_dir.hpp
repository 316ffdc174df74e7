// SPDX-License-Identifier: Apache-2.0
// A uniquely named scratch folder under the system temp folder, removed at scope exit.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace claudegate::test {

class ScratchDir {
public:
  ScratchDir() {
    std::random_device entropy;
    const auto base = std::filesystem::temp_directory_path();
    for (;;) {
      m_path = base / ("claudegate-test-" + std::to_string(::getpid()) + "-" + std::to_string(entropy()));
      if (std::filesystem::create_directory(m_path)) {
        break;
      }
    }
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return m_path; }

private:
  std::filesystem::path m_path;
};

// The permission bits of `path` (e.g. 0600).
inline unsigned mode_of(const std::filesystem::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return 0xFFFFFFFFU;
  }
  return static_cast<unsigned>(info.st_mode & 07777);
}

} // namespace claudegate::test
