// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the usage-report renderers share (private to lib/store): the
// grouping keys and counters in column order, quota cells, totals and the
// text helpers for labels and numbers.

#include "claudegate/base/duration.hpp"
#include "claudegate/base/json.hpp"
#include "claudegate/store/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace claudegate::report::detail {

using store::GroupBy;
using store::UsageRow;
using QuotaMap = std::map<std::string, store::SubjectQuota>;

struct KeyName {
  GroupBy key;
  std::string_view name;   // --by, JSON and CSV
  std::string_view header; // table
};

inline constexpr std::array<KeyName, 3> k_keys{{
    {GroupBy::sub, "sub", "SUBJECT"},
    {GroupBy::day, "day", "DAY"},
    {GroupBy::model, "model", "MODEL"},
}};

// One token counter of a row, in column order.
struct Counter {
  std::string_view header; // table
  std::string_view name;   // JSON and CSV
  std::int64_t (*get)(const UsageRow&);
};

inline constexpr std::array<Counter, 6> k_counters{{
    {"REQUESTS", "requests", [](const UsageRow& r) { return r.requests; }},
    {"INPUT", "input_tokens", [](const UsageRow& r) { return r.input_tokens; }},
    {"OUTPUT", "output_tokens", [](const UsageRow& r) { return r.output_tokens; }},
    {"CACHE-READ", "cache_read_tokens", [](const UsageRow& r) { return r.cache_read_tokens; }},
    {"CACHE-WRITE", "cache_write_tokens", [](const UsageRow& r) { return r.cache_write_tokens; }},
    {"TOTAL", "total_tokens", [](const UsageRow& r) { return r.total_tokens(); }},
}};

inline constexpr std::string_view k_limit_header = "DAILY LIMIT";
inline constexpr std::string_view k_remaining_header = "LEFT TODAY";
inline constexpr std::string_view k_limit_name = "daily_limit";
inline constexpr std::string_view k_remaining_name = "remaining_today";
inline constexpr std::string_view k_unlimited = "∞";
inline constexpr std::string_view k_full_block = "█";
inline constexpr std::array<std::string_view, 8> k_eighths{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
// Longer subjects or models are cut ("…") so the numbers stay on screen.
inline constexpr std::size_t k_max_label = 32;

inline const KeyName& key_entry(GroupBy key) {
  return *std::find_if(k_keys.begin(), k_keys.end(), [key](const KeyName& k) { return k.key == key; });
}

inline const std::string& key_value(const UsageRow& row, GroupBy key) {
  switch (key) {
  case GroupBy::sub:
    return row.subject;
  case GroupBy::day:
    return row.day;
  case GroupBy::model:
    return row.model;
  }
  return row.model;
}

inline bool grouped_by_sub(const Options& options) {
  return std::find(options.group_by.begin(), options.group_by.end(), GroupBy::sub) != options.group_by.end();
}

// ---- quota --------------------------------------------------------------

struct QuotaCells {
  std::optional<std::int64_t> limit; // nullopt: unlimited or unknown
  std::optional<std::int64_t> remaining;
};

inline QuotaCells quota_of(const std::string& subject, const QuotaMap& quotas) {
  const auto found = quotas.find(subject);
  if (found == quotas.end() || !found->second.limit) {
    return {};
  }
  const std::int64_t limit = *found->second.limit;
  return {limit, std::max<std::int64_t>(0, limit - found->second.used_today)};
}

// ---- rows and totals ----------------------------------------------------

// An aggregate over no ledger rows (zero requests) is not a row to show.
inline std::vector<UsageRow> shown_rows(const std::vector<UsageRow>& rows) {
  std::vector<UsageRow> shown;
  std::copy_if(rows.begin(), rows.end(), std::back_inserter(shown),
               [](const UsageRow& row) { return row.requests != 0; });
  return shown;
}

inline UsageRow totals_of(const std::vector<UsageRow>& rows) {
  UsageRow total;
  for (const auto& row : rows) {
    total.requests += row.requests;
    total.input_tokens += row.input_tokens;
    total.output_tokens += row.output_tokens;
    total.cache_read_tokens += row.cache_read_tokens;
    total.cache_write_tokens += row.cache_write_tokens;
    total.estimated_requests += row.estimated_requests;
  }
  return total;
}

// ---- text helpers -------------------------------------------------------

// Terminal columns of UTF-8 `text`: one per code point (no wide-glyph table).
inline std::size_t columns_of(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(
      text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// `text` cut to at most `columns` columns, ending in "…" when cut.
inline std::string fit(std::string_view text, std::size_t columns) {
  if (columns_of(text) <= columns) {
    return std::string(text);
  }
  if (columns == 0) {
    return {};
  }
  std::string out;
  std::size_t used = 0;
  for (char c : text) {
    const bool starts_code_point = (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    if (starts_code_point && used == columns - 1) {
      break;
    }
    used += starts_code_point ? 1 : 0;
    out += c;
  }
  return out + "…";
}

// Ledger text for a terminal: control characters (escape sequences) become '?'.
inline std::string printable(std::string_view text) {
  std::string out(text);
  std::replace_if(
      out.begin(), out.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; }, '?');
  return out;
}

inline std::string padded(std::string_view text, std::size_t columns, bool right_aligned) {
  const std::size_t used = columns_of(text);
  const std::string fill(columns > used ? columns - used : 0, ' ');
  return right_aligned ? fill + std::string(text) : std::string(text) + fill;
}

// "1,234,567".
inline std::string with_separators(std::int64_t value) {
  const auto magnitude =
      value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
  const std::string digits = std::to_string(magnitude);
  std::string out = value < 0 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) {
      out += ',';
    }
    out += digits[i];
  }
  return out;
}

// A bound as the user would type it: a bare UTC date at midnight, else RFC 3339.
inline std::string bound_text(UnixSeconds t) {
  const std::string text = duration::format_time(t);
  return text.ends_with("T00:00:00Z") ? text.substr(0, text.size() - 10) : text;
}

// "usage since X until Y" (until exclusive), on two lines when one is too wide.
inline std::string title(const Options& options) {
  if (!options.since || !options.until) {
    return {};
  }
  const std::string since = fmt::format("usage since {}", bound_text(*options.since));
  const std::string until = fmt::format("until {}", bound_text(*options.until));
  const bool fits = columns_of(since) + 1 + columns_of(until) <= static_cast<std::size_t>(options.width);
  return fits ? since + " " + until + "\n\n" : since + "\n      " + until + "\n\n";
}

// The renderers, one file each: report_table.cpp (table and chart),
// report_json.cpp, report_csv.cpp.
std::string render_table(const std::vector<UsageRow>& rows, const Options& options, const QuotaMap& quotas);
std::string render_chart(const std::vector<UsageRow>& rows, const Options& options);
std::string render_json(const std::vector<UsageRow>& rows, const Options& options, const QuotaMap& quotas);
std::string render_csv(const std::vector<UsageRow>& rows, const Options& options, const QuotaMap& quotas);

} // namespace claudegate::report::detail
