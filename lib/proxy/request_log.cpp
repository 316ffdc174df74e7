// SPDX-License-Identifier: Apache-2.0
#include "request_log.hpp"

#include "claudegate/base/fs.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace claudegate::proxy {

namespace {
// How long the writer lets lines gather before it writes them.
constexpr std::chrono::milliseconds k_batch_delay{5};
} // namespace

RequestLog::~RequestLog() {
  drain();
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
  write_rendered(line.dump(-1, ' ', false, json::Json::error_handler_t::replace));
}

void RequestLog::write_rendered(std::string text) {
  text += '\n';
  std::unique_lock lock(m_mutex);
  if (m_stopped) {
    put({std::move(text)}); // under the lock: late lines stay whole and in order
    return;
  }
  if (!m_thread.joinable()) {
    m_thread = std::thread([this] { run(); });
  }
  const bool first = m_queue.empty();
  m_queue.push_back(std::move(text));
  ++m_queued;
  lock.unlock();
  if (first) { // later lines join the batch the writer is about to take
    m_wake.notify_one();
  }
}

void RequestLog::flush() {
  std::unique_lock lock(m_mutex);
  const std::size_t target = m_queued;
  m_done.wait(lock, [&] { return m_written >= target || m_stopped; });
}

void RequestLog::drain() {
  {
    const std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_wake.notify_one();
  if (m_thread.joinable()) {
    m_thread.join();
  }
  const std::lock_guard lock(m_mutex);
  m_stopped = true;
  m_done.notify_all();
}

// Take what queued, write it unlocked with one flush, until drained.
void RequestLog::run() {
  std::unique_lock lock(m_mutex);
  for (;;) {
    m_wake.wait(lock, [&] { return !m_queue.empty() || m_stopping; });
    if (m_queue.empty()) {
      return;
    }
    // Let the lines of the next few ms join this write (one wake-up and one
    // write per batch under load); drain() cuts the wait short.
    m_wake.wait_for(lock, k_batch_delay, [&] { return m_stopping; });
    std::vector<std::string> lines;
    lines.swap(m_queue);
    lock.unlock();
    put(lines);
    lock.lock();
    m_written += lines.size();
    m_done.notify_all();
  }
}

void RequestLog::put(const std::vector<std::string>& lines) {
  std::FILE* out = m_file != nullptr ? m_file : stderr;
  for (const auto& text : lines) {
    std::fwrite(text.data(), 1, text.size(), out);
  }
  std::fflush(out);
}

} // namespace claudegate::proxy
