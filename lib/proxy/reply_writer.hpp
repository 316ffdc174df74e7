// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "http_message.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

// How a relayed reply reaches the client: the server's side of a forward
// (http_server.cpp writes it to the connection; Gateway::forward drives it).
namespace claudegate::proxy {

namespace asio = boost::asio;

class ReplyWriter {
public:
  virtual ~ReplyWriter() = default;
  // The head of a response whose body follows through write_body: with a
  // Content-Length when `length` is known, else chunked. False when the client is gone.
  virtual asio::awaitable<bool> write_head(const Response& head, std::optional<std::uint64_t> length) = 0;
  // The next part of that body, sent before this returns. False when the client is gone.
  virtual asio::awaitable<bool> write_body(std::string_view chunk) = 0;
  // The end of that body. False when the client is gone.
  virtual asio::awaitable<bool> end_body() = 0;
  // A whole response, when no head was written.
  virtual asio::awaitable<bool> write(Response& response) = 0;
  // The body written after write_head stops short: the connection must end.
  virtual void abandon() = 0;
  // Completes when the client hangs up or the server cuts the request off
  // (the drain period is over); never completes otherwise.
  virtual asio::awaitable<void> gone() = 0;
};

} // namespace claudegate::proxy
