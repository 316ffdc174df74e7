// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string_view>

// Host names and addresses, for the checks that keep traffic on this machine.
namespace claudegate::net {

// True for `host` in 127.0.0.0/8 (a literal address only), ::1 and "localhost".
bool is_loopback(std::string_view host);

} // namespace claudegate::net
