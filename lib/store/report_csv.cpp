// SPDX-License-Identifier: Apache-2.0
#include "report_format.hpp"

namespace claudegate::report::detail {

namespace {

// ---- CSV ----------------------------------------------------------------

// RFC 4180: quote a field holding a comma, quote or line break; double quotes.
std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    return std::string(text);
  }
  std::string out = "\"";
  for (char c : text) {
    out += c == '"' ? std::string("\"\"") : std::string(1, c);
  }
  return out + "\"";
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    line += i == 0 ? "" : ",";
    line += csv_field(fields[i]);
  }
  return line + "\r\n";
}

std::vector<std::string> csv_header(const Options& options) {
  std::vector<std::string> fields;
  for (GroupBy key : options.group_by) {
    fields.emplace_back(key_entry(key).name);
  }
  for (const auto& counter : k_counters) {
    fields.emplace_back(counter.name);
  }
  if (grouped_by_sub(options)) {
    fields.emplace_back(k_limit_name);
    fields.emplace_back(k_remaining_name);
  }
  return fields;
}

std::vector<std::string> csv_row(const UsageRow& row, const Options& options, const QuotaMap& quotas) {
  std::vector<std::string> fields;
  for (GroupBy key : options.group_by) {
    fields.push_back(key_value(row, key));
  }
  for (const auto& counter : k_counters) {
    fields.push_back(std::to_string(counter.get(row)));
  }
  if (grouped_by_sub(options)) {
    const auto quota = quota_of(row.subject, quotas);
    fields.push_back(quota.limit ? std::to_string(*quota.limit) : std::string());
    fields.push_back(quota.remaining ? std::to_string(*quota.remaining) : std::string());
  }
  return fields;
}

} // namespace

// Data rows only: a TOTAL line would be double-counted by whoever sums the column.
std::string render_csv(const std::vector<UsageRow>& rows, const Options& options, const QuotaMap& quotas) {
  std::string out = csv_line(csv_header(options));
  for (const auto& row : rows) {
    out += csv_line(csv_row(row, options, quotas));
  }
  return out;
}

} // namespace claudegate::report::detail
