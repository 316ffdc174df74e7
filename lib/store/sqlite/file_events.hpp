// SPDX-License-Identifier: Apache-2.0
// Changes to the SQLite store's files, as the kernel reports them (inotify):
// how serve-local learns at once that another process (claudegate revoke)
// wrote to the store, without reading it per request. Internal to
// lib/store/sqlite/.
#pragma once

#include "claudegate/base/errors.hpp"

#include <chrono>
#include <filesystem>
#include <string>

namespace claudegate::store::sqlite_backend {

class FileEvents {
public:
  // Watch the folder of store file `path` for writes to the file or its -wal.
  // Fails with storage (the folder cannot be watched: inotify limits).
  static Result<FileEvents> watch(const std::filesystem::path& path);

  FileEvents(FileEvents&& other) noexcept;
  FileEvents& operator=(FileEvents&& other) noexcept;
  FileEvents(const FileEvents&) = delete;
  FileEvents& operator=(const FileEvents&) = delete;
  ~FileEvents();

  // Wait at most `timeout` for writes to the store's files; true when some
  // came (every event queued so far is consumed). Fails with storage.
  Result<bool> wait(std::chrono::milliseconds timeout);

private:
  FileEvents(int fd, std::string file) : m_fd(fd), m_file(std::move(file)) {}
  bool names_store(std::string_view name) const;

  int m_fd = -1;
  std::string m_file; // the store file's name in its folder
};

} // namespace claudegate::store::sqlite_backend
