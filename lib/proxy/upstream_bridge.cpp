// SPDX-License-Identifier: Apache-2.0
#include "upstream_bridge.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace claudegate::proxy::bridge {

namespace {

class CollectingSink final : public UpstreamSink {
public:
  CollectingSink(UpstreamHead& head, std::string& body) : m_head(head), m_body(body) {}
  asio::awaitable<bool> head(const UpstreamHead& head) override {
    m_head = head;
    co_return true;
  }
  asio::awaitable<bool> data(std::string_view chunk) override {
    m_body.append(chunk);
    co_return true;
  }

private:
  UpstreamHead& m_head;
  std::string& m_body;
};

} // namespace

http::fields to_fields(const httplib::Headers& headers) {
  http::fields fields;
  for (const auto& [name, value] : headers) {
    fields.insert(name, value);
  }
  return fields;
}

httplib::Headers to_headers(const http::fields& fields) {
  httplib::Headers headers;
  for (const auto& field : fields) {
    headers.emplace(std::string(field.name_string()), std::string(field.value()));
  }
  return headers;
}

std::string header_or(const http::fields& fields, std::string_view name, std::string_view fallback) {
  const auto it = fields.find(name);
  return it != fields.end() ? std::string(it->value()) : std::string(fallback);
}

Exchange collect(Upstream& upstream, const Outbound& out, UpstreamHead& head, std::string& body) {
  thread_local asio::io_context context;
  CollectingSink sink(head, body);
  Exchange result;
  asio::co_spawn(context, upstream.exchange(out, sink), [&result](std::exception_ptr error, Exchange done) {
    result = error ? Exchange{UpstreamFailure::connect, "upstream request failed (internal error)"}
                   : std::move(done);
  });
  context.restart();
  context.run();
  return result;
}

} // namespace claudegate::proxy::bridge
