// SPDX-License-Identifier: Apache-2.0
#include "file_events.hpp"

#include <fmt/core.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <utility>

namespace claudegate::store::sqlite_backend {

namespace {

Error watch_failed(const std::filesystem::path& folder, int error) {
  return Error{Errc::storage,
               fmt::format("cannot watch {} for revocations written by other processes ({}); raise "
                           "fs.inotify.max_user_instances / max_user_watches",
                           folder.string(), std::strerror(error))};
}

} // namespace

Result<FileEvents> FileEvents::watch(const std::filesystem::path& path) {
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(path, ec);
  const auto folder = (ec ? path : absolute).parent_path();
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    return std::unexpected(watch_failed(folder, errno));
  }
  constexpr std::uint32_t k_mask = IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO;
  if (inotify_add_watch(fd, folder.empty() ? "." : folder.c_str(), k_mask) < 0) {
    const int error = errno;
    ::close(fd);
    return std::unexpected(watch_failed(folder, error));
  }
  return FileEvents(fd, path.filename().string());
}

FileEvents::FileEvents(FileEvents&& other) noexcept
    : m_fd(std::exchange(other.m_fd, -1)), m_file(std::move(other.m_file)) {
}

FileEvents& FileEvents::operator=(FileEvents&& other) noexcept {
  if (this != &other) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = std::exchange(other.m_fd, -1);
    m_file = std::move(other.m_file);
  }
  return *this;
}

FileEvents::~FileEvents() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

bool FileEvents::names_store(std::string_view name) const {
  return name == m_file
         || (name.size() == m_file.size() + 4 && name.starts_with(m_file) && name.ends_with("-wal"));
}

Result<bool> FileEvents::wait(std::chrono::milliseconds timeout) {
  pollfd ready{m_fd, POLLIN, 0};
  const int polled = ::poll(&ready, 1, static_cast<int>(timeout.count()));
  if (polled < 0 && errno != EINTR) {
    return fail(Errc::storage, fmt::format("waiting for store changes failed: {}", std::strerror(errno)));
  }
  bool changed = false;
  alignas(inotify_event) std::array<char, 4096> buffer{};
  for (;;) {
    const ssize_t got = ::read(m_fd, buffer.data(), buffer.size());
    if (got <= 0) {
      break; // EAGAIN: every queued event read
    }
    for (ssize_t at = 0; at < got;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer.data() + at);
      // An overflowed queue lost events: count it as a change.
      changed = changed || (event->mask & IN_Q_OVERFLOW) != 0
                || (event->len > 0 && names_store(std::string_view(event->name)));
      at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
    }
  }
  return changed;
}

} // namespace claudegate::store::sqlite_backend
