// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/base/json.hpp"

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>

// One JSON line per request (time, request_id, sub, jti, model, status,
// tokens, latency_ms, stream) to stderr or an append-only file. Callers
// pass only those fields: never a token, refresh token or key.
namespace claudegate::proxy {

class RequestLog {
public:
  RequestLog() = default;
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;
  ~RequestLog();

  // Append to `path` (created 0600), or stderr when empty. Fails with io,
  // or config when `path` is a symbolic link, owned by another user or
  // writable by group/others (fs::open_private).
  Result<void> open(const std::filesystem::path& path);

  // Write `line` as one compact JSON line and flush.
  void write(const json::Json& line);

private:
  std::mutex m_mutex;
  std::FILE* m_file = nullptr; // null = stderr
};

} // namespace claudegate::proxy
