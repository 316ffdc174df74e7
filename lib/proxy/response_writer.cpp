// SPDX-License-Identifier: Apache-2.0
#include "response_writer.hpp"

#include "http_connection.hpp"

#include <boost/beast/http/status.hpp>
#include <fmt/core.h>

namespace claudegate::proxy {

namespace {

constexpr std::string_view k_crlf = "\r\n";
constexpr std::string_view k_last_chunk = "0\r\n\r\n";

} // namespace

std::string ResponseWriter::serialize_head(const Response& response, std::string_view framing) const {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\n", response.status,
      std::string_view(http::obsolete_reason(http::int_to_status(static_cast<unsigned>(response.status)))));
  for (const auto& field : response.headers) {
    if (field.name() != http::field::content_length && field.name() != http::field::transfer_encoding
        && field.name() != http::field::connection) {
      out.append(field.name_string()).append(": ").append(field.value()).append(k_crlf);
    }
  }
  out.append(framing);
  out.append(m_keep_alive ? "" : "Connection: close\r\n");
  out.append(k_crlf);
  return out;
}

asio::awaitable<bool> ResponseWriter::write(Response& response) {
  const std::string head =
      serialize_head(response, fmt::format("Content-Length: {}\r\n", response.body.size()));
  std::vector<asio::const_buffer> parts{asio::buffer(head)};
  if (!m_head_only && !response.body.empty()) {
    parts.push_back(asio::buffer(response.body));
  }
  m_ok = co_await m_connection.send(std::move(parts));
  m_complete = m_ok;
  co_return m_ok;
}

asio::awaitable<bool> ResponseWriter::write_head(const Response& head, std::optional<std::uint64_t> length) {
  m_chunked = !length;
  m_held = serialize_head(head, length ? fmt::format("Content-Length: {}\r\n", *length)
                                       : std::string("Transfer-Encoding: chunked\r\n"));
  if (length && *length > 0 && !m_head_only) {
    co_return true; // leaves with the first body bytes, in one write
  }
  co_return co_await flush({});
}

asio::awaitable<bool> ResponseWriter::write_body(std::string_view chunk) {
  if (chunk.empty() || m_head_only) {
    co_return m_ok;
  }
  if (!m_chunked) {
    co_return co_await flush(chunk);
  }
  const std::string size = fmt::format("{:x}\r\n", chunk.size());
  std::vector<asio::const_buffer> parts;
  if (!m_held.empty()) {
    parts.push_back(asio::buffer(m_held));
  }
  parts.insert(parts.end(), {asio::buffer(size), asio::buffer(chunk), asio::buffer(k_crlf)});
  m_ok = co_await m_connection.send(std::move(parts));
  m_held.clear();
  co_return m_ok;
}

asio::awaitable<bool> ResponseWriter::end_body() {
  const bool last_chunk = m_chunked && !m_head_only;
  if (!co_await flush(last_chunk ? k_last_chunk : std::string_view{})) {
    co_return false;
  }
  m_complete = true;
  co_return true;
}

// The held head (if any) and `body` in one write.
asio::awaitable<bool> ResponseWriter::flush(std::string_view body) {
  std::vector<asio::const_buffer> parts;
  if (!m_held.empty()) {
    parts.push_back(asio::buffer(m_held));
  }
  if (!body.empty()) {
    parts.push_back(asio::buffer(body));
  }
  if (!parts.empty() && m_ok) {
    m_ok = co_await m_connection.send(std::move(parts));
  }
  m_held.clear();
  co_return m_ok;
}

asio::awaitable<void> ResponseWriter::gone() {
  co_await m_connection.wait_gone();
}

} // namespace claudegate::proxy
