// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: see run_oauth_request in entry_points.hpp.
#include "entry_points.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  claudegate::fuzz::run_oauth_request(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
