// SPDX-License-Identifier: Apache-2.0
#include "upstream.hpp"

#include "claudegate/proxy/anthropic_error.hpp"
#include "claudegate/proxy/message_request.hpp"
#include "claudegate/proxy/mock_claude.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <vector>

namespace claudegate::proxy {

void Cancellation::cancel() {
  const std::lock_guard lock(m_mutex);
  m_canceled = true;
  if (m_abort) {
    m_abort();
    m_abort = nullptr;
  }
}

bool Cancellation::canceled() const {
  const std::lock_guard lock(m_mutex);
  return m_canceled;
}

bool Cancellation::arm(std::function<void()> abort) {
  const std::lock_guard lock(m_mutex);
  if (!m_canceled) {
    m_abort = std::move(abort);
  }
  return !m_canceled;
}

void Cancellation::disarm() {
  const std::lock_guard lock(m_mutex);
  m_abort = nullptr;
}

namespace {

const Exchange k_canceled{UpstreamFailure::canceled, "canceled"};

// While alive, `cancel` (when given) shuts `client`'s connection down from
// another thread; httplib's stop() is made for exactly that.
class CancelScope {
public:
  CancelScope(Cancellation* cancel, httplib::Client& client) : m_cancel(cancel) {
    m_armed = m_cancel == nullptr || m_cancel->arm([&client] { client.stop(); });
  }
  ~CancelScope() {
    if (m_cancel != nullptr) {
      m_cancel->disarm();
    }
  }
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;
  bool armed() const { return m_armed; }

private:
  Cancellation* m_cancel;
  bool m_armed = false;
};

struct ParsedUrl {
  std::string origin; // scheme://host[:port]
  std::string prefix; // path prefix without trailing slash
};

Result<ParsedUrl> parse_url(const std::string& url) {
  const bool https = url.starts_with("https://");
  if (!https && !url.starts_with("http://")) {
    return fail(Errc::config, fmt::format("--upstream '{}' must start with https:// or http://", url));
  }
  const std::size_t host_start = https ? 8 : 7;
  const std::size_t slash = url.find('/', host_start);
  if (url.size() == host_start || slash == host_start) {
    return fail(Errc::config, fmt::format("--upstream '{}' has no host", url));
  }
  ParsedUrl parsed{url.substr(0, slash), slash == std::string::npos ? "" : url.substr(slash)};
  while (parsed.prefix.ends_with('/')) {
    parsed.prefix.pop_back();
  }
  return parsed;
}

// Idle keep-alive clients, so concurrent requests each get their own connection.
class ClientPool {
public:
  explicit ClientPool(UpstreamSettings settings, ParsedUrl url)
      : m_settings(std::move(settings)), m_url(std::move(url)) {}

  std::unique_ptr<httplib::Client> acquire() {
    {
      const std::lock_guard lock(m_mutex);
      if (!m_idle.empty()) {
        auto client = std::move(m_idle.back());
        m_idle.pop_back();
        return client;
      }
    }
    return make_client();
  }

  void release(std::unique_ptr<httplib::Client> client) {
    const std::lock_guard lock(m_mutex);
    if (m_idle.size() < k_max_idle) {
      m_idle.push_back(std::move(client));
    }
  }

  const ParsedUrl& url() const { return m_url; }
  const UpstreamSettings& settings() const { return m_settings; }

private:
  static constexpr std::size_t k_max_idle = 64;

  std::unique_ptr<httplib::Client> make_client() const {
    auto client = std::make_unique<httplib::Client>(m_url.origin);
    client->set_keep_alive(true);
    // httplib writes the head and the body separately: without TCP_NODELAY
    // the body waits ~40 ms for the upstream's delayed ACK (Nagle).
    client->set_tcp_nodelay(true);
    client->set_url_encode(false); // forward the target byte for byte
    client->set_decompress(false);
    client->set_follow_location(false);
    client->set_connection_timeout(static_cast<time_t>(m_settings.connect_timeout), 0);
    client->set_read_timeout(static_cast<time_t>(m_settings.read_timeout), 0);
    client->set_write_timeout(static_cast<time_t>(m_settings.read_timeout), 0);
    return client;
  }

  UpstreamSettings m_settings;
  ParsedUrl m_url;
  std::mutex m_mutex;
  std::vector<std::unique_ptr<httplib::Client>> m_idle;
};

Exchange classify(httplib::Error error, std::chrono::steady_clock::duration elapsed,
                  std::int64_t read_timeout) {
  using httplib::Error;
  const std::string what = httplib::to_string(error);
  if (error == Error::Canceled) {
    return k_canceled;
  }
  const auto waited = std::chrono::duration_cast<std::chrono::seconds>(elapsed).count();
  // httplib reports a read timeout as a plain Read error: tell them apart by the time waited.
  if (error == Error::ConnectionTimeout || (error == Error::Read && waited + 1 >= read_timeout)) {
    return {UpstreamFailure::timeout, fmt::format("upstream did not answer in time ({})", what)};
  }
  return {UpstreamFailure::connect, fmt::format("upstream request failed ({})", what)};
}

class HttpUpstream final : public Upstream {
public:
  HttpUpstream(UpstreamSettings settings, ParsedUrl url) : m_pool(std::move(settings), std::move(url)) {}

  Exchange exchange(const Outbound& out, const HeadFn& on_head, const DataFn& on_data) override {
    httplib::Request req = request_for(out);
    req.response_handler = [&](const httplib::Response& res) {
      return on_head(UpstreamHead{res.status, res.headers});
    };
    req.content_receiver = [&](const char* data, std::size_t size, std::uint64_t, std::uint64_t) {
      return on_data(std::string_view(data, size));
    };
    auto client = m_pool.acquire();
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    const auto start = std::chrono::steady_clock::now();
    bool ok = false;
    {
      const CancelScope scope(out.cancel.get(), *client);
      if (!scope.armed()) {
        return k_canceled;
      }
      ok = client->send(req, res, error);
    }
    if (out.cancel && out.cancel->canceled()) {
      return k_canceled; // the connection was shut down: never reuse it
    }
    if (!ok) {
      return classify(error, std::chrono::steady_clock::now() - start, m_pool.settings().read_timeout);
    }
    m_pool.release(std::move(client));
    return {};
  }

private:
  httplib::Request request_for(const Outbound& out) const {
    httplib::Request req;
    req.method = out.method;
    req.path = m_pool.url().prefix + out.target;
    req.headers = out.headers;
    req.headers.emplace("x-api-key", m_pool.settings().api_key);
    // Usage is read from the body as it passes, so it must arrive unencoded
    // (httplib would otherwise offer gzip, and the body is not decompressed).
    req.headers.emplace("Accept-Encoding", "identity");
    req.body = out.body;
    return req;
  }

  ClientPool m_pool;
};

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// The mock reply for `out`: count_tokens, models, or a message (JSON or SSE events).
class MockUpstream final : public Upstream {
public:
  explicit MockUpstream(RandomSource& random) : m_random(random) {}

  Exchange exchange(const Outbound& out, const HeadFn& on_head, const DataFn& on_data) override {
    const std::string request_id = new_request_id(m_random);
    const std::string_view path = path_of(out.target);
    if (path == "/v1/messages" && out.stream) {
      return stream_events(out, request_id, on_head, on_data);
    }
    MockReply reply = reply_for(path, out, request_id);
    httplib::Headers headers = {{"content-type", reply.content_type}, {"request-id", request_id}};
    if (!on_head(UpstreamHead{reply.status, headers}) || !on_data(reply.body)) {
      return k_canceled;
    }
    return {};
  }

private:
  static MockReply reply_for(std::string_view path, const Outbound& out, const std::string& request_id) {
    if (path == "/v1/messages") {
      return mock_message(out.body, request_id);
    }
    if (path == "/v1/messages/count_tokens") {
      return mock_count_tokens(out.body);
    }
    if (path == "/v1/models") {
      return {200, "application/json", mock_models_body(mock_model_ids())};
    }
    if (path.starts_with("/v1/models/")) {
      return model_reply(path.substr(11), request_id);
    }
    return {404, "application/json", error_body("not_found_error", "Not found", request_id)};
  }

  static MockReply model_reply(std::string_view id, const std::string& request_id) {
    const auto& ids = mock_model_ids();
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
      return {404, "application/json",
              error_body("not_found_error", fmt::format("model: {}", id), request_id)};
    }
    return {200, "application/json", mock_model_body(id)};
  }

  static Exchange stream_events(const Outbound& out, const std::string& request_id, const HeadFn& on_head,
                                const DataFn& on_data) {
    httplib::Headers headers = {{"content-type", "text/event-stream; charset=utf-8"},
                                {"request-id", request_id}};
    if (!on_head(UpstreamHead{200, headers})) {
      return k_canceled;
    }
    for (const auto& event : mock_message_events(out.body, request_id)) {
      if (!on_data(event)) {
        return k_canceled;
      }
    }
    return {};
  }

  RandomSource& m_random;
};

} // namespace

Result<std::unique_ptr<Upstream>> http_upstream(const UpstreamSettings& settings) {
  auto url = parse_url(settings.url);
  if (!url) {
    return propagate(url);
  }
  return std::make_unique<HttpUpstream>(settings, std::move(*url));
}

std::unique_ptr<Upstream> mock_upstream(RandomSource& random) {
  return std::make_unique<MockUpstream>(random);
}

} // namespace claudegate::proxy
