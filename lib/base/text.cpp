// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/text.hpp"

#include <algorithm>

namespace claudegate::text {

std::string lower(std::string_view text) {
  std::string out(text);
  // ASCII only, without the locale lookup std::tolower makes per byte
  // (header names are lowered on every request).
  std::ranges::transform(out, out.begin(),
                         [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
  return out;
}

std::string_view trim(std::string_view text, std::string_view blanks) {
  const auto first = text.find_first_not_of(blanks);
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = text.find_last_not_of(blanks);
  return text.substr(first, last - first + 1);
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> items;
  for (std::size_t start = 0; start <= text.size();) {
    const auto end = std::min(text.find(separator, start), text.size());
    items.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return items;
}

std::vector<std::string_view> words(std::string_view text, char separator) {
  std::vector<std::string_view> items;
  for (std::size_t start = 0; start < text.size();) {
    const auto end = std::min(text.find(separator, start), text.size());
    if (end > start) {
      items.push_back(text.substr(start, end - start));
    }
    start = end + 1;
  }
  return items;
}

} // namespace claudegate::text
