// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>
#include <vector>

// Small ASCII text helpers shared by every layer.
namespace claudegate::text {

// `text` with its ASCII letters in lower case; other bytes unchanged.
std::string lower(std::string_view text);

// `text` without the leading and trailing characters found in `blanks`
// (empty when `text` holds nothing else).
std::string_view trim(std::string_view text, std::string_view blanks = " \t");

// The items of `text` between each `separator`, empty ones included: "a,,b"
// gives "a", "", "b" and "" gives one empty item.
std::vector<std::string_view> split(std::string_view text, char separator);

// The non-empty items of `text` between each `separator`: "  a b " gives
// "a", "b" and "" gives none.
std::vector<std::string_view> words(std::string_view text, char separator = ' ');

} // namespace claudegate::text
