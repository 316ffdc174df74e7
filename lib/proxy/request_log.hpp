// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// One JSON line per request (time, request_id, sub, jti, model, status,
// tokens, latency_ms, stream) to stderr or an append-only file. Callers
// pass only those fields: never a token, refresh token or key. Written
// behind the request path: write() queues the line and a writer thread
// (started by the first write) writes and flushes what queued, in order.
namespace claudegate::proxy {

class RequestLog {
public:
  RequestLog() = default;
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;
  ~RequestLog(); // drain()

  // Append to `path` (created 0600), or stderr when empty. Fails with io,
  // or config when `path` is a symbolic link, owned by another user or
  // writable by group/others (fs::open_private).
  Result<void> open(const std::filesystem::path& path);

  // Queue `line` as one compact JSON line; never waits on the file. After
  // drain() the line is written at once.
  void write(const json::Json& line);
  // As write(), for a line already rendered as one JSON object (no newline).
  void write_rendered(std::string line);

  // Wait until every line queued before the call is written and flushed.
  void flush();

  // Write and flush everything queued and stop the writer thread (SIGTERM
  // path, after the server stopped). Idempotent.
  void drain();

private:
  void run();
  void put(const std::vector<std::string>& lines);

  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::condition_variable m_done;
  std::vector<std::string> m_queue;
  std::size_t m_queued = 0;  // lines ever queued
  std::size_t m_written = 0; // of those, written
  bool m_stopping = false;
  bool m_stopped = false;
  std::thread m_thread;
  std::FILE* m_file = nullptr; // null = stderr
};

} // namespace claudegate::proxy
