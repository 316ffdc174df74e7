// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "upstream.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

// Cancellation of an exchange as a result, not an exception.
namespace claudegate::proxy {

// `exchange`'s result; canceled when an operation it started after the
// awaiting coroutine was canceled threw operation_aborted (asio's default).
inline asio::awaitable<Exchange> canceled_as_result(asio::awaitable<Exchange> exchange) {
  try {
    co_return co_await std::move(exchange);
  } catch (const boost::system::system_error& error) {
    if (error.code() != asio::error::operation_aborted) {
      throw;
    }
  }
  co_return Exchange{UpstreamFailure::canceled, "canceled"};
}

} // namespace claudegate::proxy
