// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/net.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

namespace claudegate::net {

bool is_loopback(std::string_view host) {
  if (host == "localhost" || host == "::1") {
    return true;
  }
  // A literal 127.0.0.0/8 address only: "127.example.com" could resolve anywhere.
  in_addr addr{};
  return inet_pton(AF_INET, std::string(host).c_str(), &addr) == 1 && (ntohl(addr.s_addr) >> 24) == 127;
}

} // namespace claudegate::net
