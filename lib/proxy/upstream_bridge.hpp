// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "upstream.hpp"

#include <httplib.h>

#include <string>
#include <string_view>

// bridge until the Beast server (#16): the httplib server's threads call the
// async Upstream on an io_context of their own. Deleted with the httplib server.
namespace claudegate::proxy::bridge {

http::fields to_fields(const httplib::Headers& headers);
httplib::Headers to_headers(const http::fields& fields);
// The value of `name` in `fields`, `fallback` when absent.
std::string header_or(const http::fields& fields, std::string_view name, std::string_view fallback);

// Run `out` on `upstream` to its end on this thread's own io_context (one per
// thread, with its connection pool), the reply collected whole.
Exchange collect(Upstream& upstream, const Outbound& out, UpstreamHead& head, std::string& body);

} // namespace claudegate::proxy::bridge
