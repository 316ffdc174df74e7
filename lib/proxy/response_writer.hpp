// SPDX-License-Identifier: Apache-2.0
// Internal to proxy: how HttpConnection writes a response (a whole one, or
// a relayed one head first and its body as it comes: Content-Length when
// known, else chunked).
#pragma once

#include "reply_writer.hpp"

#include <string>

namespace claudegate::proxy {

class HttpConnection;

class ResponseWriter final : public ReplyWriter {
public:
  // `keep_alive`: the connection may serve another request after this one;
  // `head_only`: a HEAD, whose body is never sent.
  ResponseWriter(HttpConnection& connection, bool keep_alive, bool head_only)
      : m_connection(connection), m_keep_alive(keep_alive), m_head_only(head_only) {}

  asio::awaitable<bool> write_head(const Response& head, std::optional<std::uint64_t> length) override;
  asio::awaitable<bool> write_body(std::string_view chunk) override;
  asio::awaitable<bool> end_body() override;
  asio::awaitable<bool> write(Response& response) override;
  void abandon() override { m_keep_alive = false; }
  asio::awaitable<void> gone() override;

  // True when the connection can take the next request.
  bool reusable() const { return m_keep_alive && m_ok && m_complete; }

private:
  // The status line and header fields of `response`, ending in the blank line.
  std::string serialize_head(const Response& response, std::string_view framing) const;
  asio::awaitable<bool> flush(std::string_view body);

  HttpConnection& m_connection;
  bool m_keep_alive;
  bool m_head_only;
  bool m_chunked = false;
  bool m_ok = true;        // no write failed
  bool m_complete = false; // the whole response went out
  std::string m_held;      // a head waiting to leave with the first body bytes
};

} // namespace claudegate::proxy
