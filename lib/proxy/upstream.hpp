// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

// Where the gateway sends a checked request: Anthropic over HTTP(S) with
// the server-side key, or the built-in mock Claude. Both deliver the answer
// the same way (head, then body chunks as they arrive) so metering has one path.
namespace claudegate::proxy {

// Lets another thread end an exchange at once (the client left, or a hard
// shutdown): the upstream connection is shut down rather than read to its end.
// Thread-safe; once canceled it stays canceled.
class Cancellation {
public:
  // Cancel: run the armed abort, if any, and make every later arm() fail.
  void cancel();
  bool canceled() const;
  // Arm `abort` to run on cancel() until disarm(); false (and `abort` not
  // kept) when already canceled.
  bool arm(std::function<void()> abort);
  // Disarm; once it returns the armed abort can no longer run.
  void disarm();

private:
  mutable std::mutex m_mutex;
  bool m_canceled = false;
  std::function<void()> m_abort;
};

struct Outbound {
  std::string method = "POST";
  std::string target;       // path and query, exactly as the client sent them
  httplib::Headers headers; // already filtered; the API key is added by the upstream
  std::string body;
  bool stream = false;
  std::shared_ptr<Cancellation> cancel; // null: the exchange runs to its end
};

struct UpstreamHead {
  int status = 0;
  httplib::Headers headers;
};

enum class UpstreamFailure { none, connect, timeout, canceled };

struct Exchange {
  UpstreamFailure failure = UpstreamFailure::none;
  std::string message; // what failed, for the error envelope and the log
};

// Called once with the status and headers; return false to cancel.
using HeadFn = std::function<bool(const UpstreamHead& head)>;
// Called with each body chunk as it arrives; return false to cancel.
using DataFn = std::function<bool(std::string_view chunk)>;

class Upstream {
public:
  virtual ~Upstream() = default;
  // Send `out`, reporting the reply through `on_head` and `on_data`; thread-safe.
  virtual Exchange exchange(const Outbound& out, const HeadFn& on_head, const DataFn& on_data) = 0;
};

struct UpstreamSettings {
  std::string url; // scheme://host[:port][/prefix]
  std::string api_key;
  std::int64_t connect_timeout = 10; // seconds
  std::int64_t read_timeout = 600;   // seconds between bytes
};

// An HTTP(S) upstream at `settings.url` (TLS verified with the system CA
// bundle). Fails with config on a URL it cannot use.
Result<std::unique_ptr<Upstream>> http_upstream(const UpstreamSettings& settings);

// The built-in mock Claude (no network, no key); request ids from `random`.
std::unique_ptr<Upstream> mock_upstream(RandomSource& random);

} // namespace claudegate::proxy
