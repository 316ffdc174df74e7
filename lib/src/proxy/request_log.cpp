// SPDX-License-Identifier: Apache-2.0
#include "request_log.hpp"

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
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fail(Errc::io, fmt::format("cannot open log file {} ({}); check the folder exists and is writable",
                                      path.string(), std::strerror(errno)));
  }
  m_file = ::fdopen(fd, "a");
  if (m_file == nullptr) {
    ::close(fd);
    return fail(Errc::io, fmt::format("cannot open log file {}", path.string()));
  }
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
