// SPDX-License-Identifier: Apache-2.0
#include "report_format.hpp"

namespace claudegate::report::detail {

namespace {

// ---- JSON ---------------------------------------------------------------

// Written member by member with json::ObjectWriter, one row per line in a
// fixed member order: a tree of nlohmann objects costs several times the
// query on a large report (~25 000 rows of 6–10 members). Ledger text is
// not trusted to be valid UTF-8: invalid bytes are replaced.

// JSON rows also say how many of their requests were charged an estimate
// (a stream cut before its final usage, a 200 without readable usage).
void add_counter_members(json::ObjectWriter& object, const UsageRow& row) {
  for (const auto& counter : k_counters) {
    object.integer(counter.name, counter.get(row));
  }
  object.integer("estimated_requests", row.estimated_requests);
}

void append_row_json(std::string& out, const UsageRow& row, const Options& options, const QuotaMap& quotas) {
  json::ObjectWriter object(out, json::ObjectWriter::Style::spaced);
  for (GroupBy key : options.group_by) {
    object.string_lossy(key_entry(key).name, key_value(row, key));
  }
  add_counter_members(object, row);
  if (grouped_by_sub(options)) {
    const auto quota = quota_of(row.subject, quotas);
    object.integer(k_limit_name, quota.limit);
    object.integer(k_remaining_name, quota.remaining);
  }
  object.close();
}

std::string time_json(const std::optional<UnixSeconds>& t) {
  std::string out = "null";
  if (t) {
    out.clear();
    json::append_quoted_lossy(out, duration::format_time(*t));
  }
  return out;
}

} // namespace

std::string render_json(const std::vector<UsageRow>& rows, const Options& options, const QuotaMap& quotas) {
  std::string keys;
  for (GroupBy key : options.group_by) {
    keys += keys.empty() ? "" : ", ";
    json::append_quoted_lossy(keys, key_entry(key).name);
  }
  std::string out =
      fmt::format("{{\n  \"since\": {},\n  \"until\": {},\n  \"group_by\": [{}],\n  \"rows\": [",
                  time_json(options.since), time_json(options.until), keys);
  out.reserve(out.size() + rows.size() * 256);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    out += i == 0 ? "\n    " : ",\n    ";
    append_row_json(out, rows[i], options, quotas);
  }
  out += rows.empty() ? "],\n" : "\n  ],\n";
  out += "  \"totals\": ";
  json::ObjectWriter totals(out, json::ObjectWriter::Style::spaced);
  add_counter_members(totals, totals_of(rows));
  totals.close();
  return out + "\n}\n";
}

} // namespace claudegate::report::detail
