// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "upstream.hpp"

#include <boost/asio/ssl/context.hpp>

#include <memory>

// http_upstream with a given TLS client context, for tests that trust a
// certificate they made (production uses tls::client_context()).
namespace claudegate::proxy {

Result<std::unique_ptr<Upstream>> http_upstream(const UpstreamSettings& settings,
                                                std::shared_ptr<asio::ssl::context> tls);

} // namespace claudegate::proxy
