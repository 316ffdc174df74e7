// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/fields.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

// Where the gateway sends a checked request: Anthropic over HTTP(S) with the
// server-side key, or the built-in mock Claude. Both deliver the answer the
// same way (head, then body chunks as they arrive, each awaited) so metering
// has one path. An exchange runs on the io thread of the awaiting coroutine.
namespace claudegate::proxy {

namespace asio = boost::asio;
namespace http = boost::beast::http;

struct Outbound {
  std::string method = "POST";
  std::string target;   // path and query, exactly as the client sent them
  http::fields headers; // already filtered; the upstream adds x-api-key, Host, Content-Length,
                        // Accept-Encoding: identity
  std::string body;
  bool stream = false;
};

struct UpstreamHead {
  int status = 0;
  http::fields headers; // as received (hop-by-hop ones included; the gateway filters)
};

enum class UpstreamFailure { none, connect, timeout, canceled };

struct Exchange {
  UpstreamFailure failure = UpstreamFailure::none;
  std::string message; // what failed, for the error envelope and the log
};

// Where an exchange delivers the reply. Both are awaited: the next upstream
// read starts only after data() returned (backpressure).
class UpstreamSink {
public:
  virtual ~UpstreamSink() = default;
  // Once, with the status and headers; false cancels the exchange.
  virtual asio::awaitable<bool> head(const UpstreamHead& head) = 0;
  // Each body chunk as it arrives (transfer coding removed, content coding
  // kept); false cancels the exchange.
  virtual asio::awaitable<bool> data(std::string_view chunk) = 0;
};

class Upstream {
public:
  virtual ~Upstream() = default;
  // Send `out` and deliver the reply to `sink`, on the calling coroutine's
  // executor (an io thread; nothing blocks). Safe to call from several io
  // threads at once. Terminal cancellation of the awaiting coroutine (e.g.
  // from `a || b` in asio::experimental::awaitable_operators) closes the
  // upstream connection at once (it is never pooled again). A sink that
  // returns false ends the exchange with failure canceled.
  virtual asio::awaitable<Exchange> exchange(const Outbound& out, UpstreamSink& sink) = 0;
};

struct UpstreamSettings {
  std::string url; // scheme://host[:port][/prefix]
  std::string api_key;
  std::int64_t connect_timeout = 10; // seconds
  std::int64_t read_timeout = 600;   // seconds between bytes
};

// An HTTP(S) upstream at `settings.url`: keep-alive connection pool per io
// thread, TCP_NODELAY, TLS via asio::ssl with SNI, hostname verification and
// the system CAs. Fails with config on a URL it cannot use.
Result<std::unique_ptr<Upstream>> http_upstream(const UpstreamSettings& settings);

// The built-in mock Claude (no network, no key); request ids from `random`.
std::unique_ptr<Upstream> mock_upstream(RandomSource& random);

} // namespace claudegate::proxy
