// SPDX-License-Identifier: Apache-2.0
#include "request_log.hpp"

#include "claudegate/base/fs.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace claudegate::proxy {

RequestLog::~RequestLog() {
  if (m_file != nullptr) {
    std::fclose(m_file);
  }
}

Result<void> RequestLog::open(const std::filesystem::path& path) {
  if (path.empty()) {
    return {};
  }
  // Never through a link (a root gateway would append wherever it points),
  // and only to a file of the user's (or root's) that others cannot rewrite.
  auto fd = fs::open_private(path, {"log file", fs::PathKind::file, fs::Links::refuse},
                             O_WRONLY | O_APPEND | O_CREAT, 0600);
  if (!fd) {
    if (fd.error().code != Errc::io) {
      return propagate(fd);
    }
    return fail(Errc::io, fmt::format("{}; check the folder exists and is writable", fd.error().message));
  }
  m_file = ::fdopen(fd->get(), "a");
  if (m_file == nullptr) {
    return fail(Errc::io, fmt::format("cannot open log file {} ({})", path.string(), std::strerror(errno)));
  }
  fd->release();
  return {};
}

void RequestLog::write(const json::Json& line) {
  const std::string text = line.dump(-1, ' ', false, json::Json::error_handler_t::replace) + "\n";
  const std::lock_guard lock(m_mutex);
  std::FILE* out = m_file != nullptr ? m_file : stderr;
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
}

} // namespace claudegate::proxy
