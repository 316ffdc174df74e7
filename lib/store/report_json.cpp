// SPDX-License-Identifier: Apache-2.0
#include "report_format.hpp"

namespace claudegate::report::detail {

namespace {

// ---- JSON ---------------------------------------------------------------

// Written by hand, one row per line in a fixed member order: a tree of
// nlohmann objects costs several times the query on a large report.

// `text` as a JSON string; ledger text is not trusted to be valid UTF-8,
// so anything but plain ASCII goes through nlohmann with replacement.
std::string json_string(std::string_view text) {
  const bool plain = std::all_of(text.begin(), text.end(),
                                 [](char c) { return c >= 0x20 && c < 0x7F && c != '"' && c != '\\'; });
  if (plain) {
    return fmt::format("\"{}\"", text);
  }
  return json::Json(std::string(text)).dump(-1, ' ', false, json::Json::error_handler_t::replace);
}

// A JSON object written member by member straight into `out` (no
// per-member strings: a large report has ~25 000 rows of 6–10 members).
class JsonObjectWriter {
public:
  explicit JsonObjectWriter(std::string& out) : m_out(out) { m_out += '{'; }
  JsonObjectWriter(const JsonObjectWriter&) = delete;
  JsonObjectWriter& operator=(const JsonObjectWriter&) = delete;
  ~JsonObjectWriter() { m_out += '}'; }

  // Member `name` whose value is the JSON text `value`.
  void raw(std::string_view name, std::string_view value) {
    start(name);
    m_out += value;
  }
  void number(std::string_view name, std::int64_t value) {
    start(name);
    fmt::format_to(std::back_inserter(m_out), "{}", value);
  }
  void number(std::string_view name, const std::optional<std::int64_t>& value) {
    if (value) {
      number(name, *value);
    } else {
      raw(name, "null");
    }
  }

private:
  void start(std::string_view name) {
    m_out += m_first ? "\"" : ", \"";
    m_first = false;
    m_out += name;
    m_out += "\": ";
  }
  std::string& m_out;
  bool m_first = true;
};

// JSON rows also say how many of their requests were charged an estimate
// (a stream cut before its final usage, a 200 without readable usage).
void add_counter_members(JsonObjectWriter& object, const UsageRow& row) {
  for (const auto& counter : k_counters) {
    object.number(counter.name, counter.get(row));
  }
  object.number("estimated_requests", row.estimated_requests);
}

void append_row_json(std::string& out, const UsageRow& row, const Options& options, const QuotaMap& quotas) {
  JsonObjectWriter object(out);
  for (GroupBy key : options.group_by) {
    object.raw(key_entry(key).name, json_string(key_value(row, key)));
  }
  add_counter_members(object, row);
  if (grouped_by_sub(options)) {
    const auto quota = quota_of(row.subject, quotas);
    object.number(k_limit_name, quota.limit);
    object.number(k_remaining_name, quota.remaining);
  }
}

std::string time_json(const std::optional<UnixSeconds>& t) {
  return t ? json_string(duration::format_time(*t)) : "null";
}

} // namespace

std::string render_json(const std::vector<UsageRow>& rows, const Options& options, const QuotaMap& quotas) {
  std::string keys;
  for (GroupBy key : options.group_by) {
    keys += keys.empty() ? "" : ", ";
    keys += json_string(key_entry(key).name);
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
  {
    JsonObjectWriter totals(out);
    add_counter_members(totals, totals_of(rows));
  }
  return out + "\n}\n";
}

} // namespace claudegate::report::detail
