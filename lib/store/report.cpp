// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/report.hpp"

#include "claudegate/base/duration.hpp"
#include "claudegate/base/json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <iterator>

namespace claudegate::report {

namespace {

using store::GroupBy;
using store::UsageRow;
using QuotaMap = std::map<std::string, store::SubjectQuota>;

struct KeyName {
  GroupBy key;
  std::string_view name;   // --by, JSON and CSV
  std::string_view header; // table
};

constexpr std::array<KeyName, 3> k_keys{{
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

constexpr std::array<Counter, 6> k_counters{{
    {"REQUESTS", "requests", [](const UsageRow& r) { return r.requests; }},
    {"INPUT", "input_tokens", [](const UsageRow& r) { return r.input_tokens; }},
    {"OUTPUT", "output_tokens", [](const UsageRow& r) { return r.output_tokens; }},
    {"CACHE-READ", "cache_read_tokens", [](const UsageRow& r) { return r.cache_read_tokens; }},
    {"CACHE-WRITE", "cache_write_tokens", [](const UsageRow& r) { return r.cache_write_tokens; }},
    {"TOTAL", "total_tokens", [](const UsageRow& r) { return r.total_tokens(); }},
}};

constexpr std::string_view k_limit_header = "DAILY LIMIT";
constexpr std::string_view k_remaining_header = "LEFT TODAY";
constexpr std::string_view k_limit_name = "daily_limit";
constexpr std::string_view k_remaining_name = "remaining_today";
constexpr std::string_view k_unlimited = "∞";
constexpr std::string_view k_full_block = "█";
constexpr std::array<std::string_view, 8> k_eighths{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
// Longer subjects or models are cut ("…") so the numbers stay on screen.
constexpr std::size_t k_max_label = 32;

const KeyName& key_entry(GroupBy key) {
  return *std::find_if(k_keys.begin(), k_keys.end(), [key](const KeyName& k) { return k.key == key; });
}

const std::string& key_value(const UsageRow& row, GroupBy key) {
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

bool grouped_by_sub(const Options& options) {
  return std::find(options.group_by.begin(), options.group_by.end(), GroupBy::sub) != options.group_by.end();
}

// ---- quota --------------------------------------------------------------

struct QuotaCells {
  std::optional<std::int64_t> limit; // nullopt: unlimited or unknown
  std::optional<std::int64_t> remaining;
};

QuotaCells quota_of(const std::string& subject, const QuotaMap& quotas) {
  const auto found = quotas.find(subject);
  if (found == quotas.end() || !found->second.limit) {
    return {};
  }
  const std::int64_t limit = *found->second.limit;
  return {limit, std::max<std::int64_t>(0, limit - found->second.used_today)};
}

// ---- rows and totals ----------------------------------------------------

// An aggregate over no ledger rows (zero requests) is not a row to show.
std::vector<UsageRow> shown_rows(const std::vector<UsageRow>& rows) {
  std::vector<UsageRow> shown;
  std::copy_if(rows.begin(), rows.end(), std::back_inserter(shown),
               [](const UsageRow& row) { return row.requests != 0; });
  return shown;
}

UsageRow totals_of(const std::vector<UsageRow>& rows) {
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
std::size_t columns_of(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(
      text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// `text` cut to at most `columns` columns, ending in "…" when cut.
std::string fit(std::string_view text, std::size_t columns) {
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
std::string printable(std::string_view text) {
  std::string out(text);
  std::replace_if(
      out.begin(), out.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; }, '?');
  return out;
}

std::string padded(std::string_view text, std::size_t columns, bool right_aligned) {
  const std::size_t used = columns_of(text);
  const std::string fill(columns > used ? columns - used : 0, ' ');
  return right_aligned ? fill + std::string(text) : std::string(text) + fill;
}

// "1,234,567".
std::string with_separators(std::int64_t value) {
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
std::string bound_text(UnixSeconds t) {
  const std::string text = duration::format_time(t);
  return text.ends_with("T00:00:00Z") ? text.substr(0, text.size() - 10) : text;
}

// "usage since X until Y" (until exclusive), on two lines when one is too wide.
std::string title(const Options& options) {
  if (!options.since || !options.until) {
    return {};
  }
  const std::string since = fmt::format("usage since {}", bound_text(*options.since));
  const std::string until = fmt::format("until {}", bound_text(*options.until));
  const bool fits = columns_of(since) + 1 + columns_of(until) <= static_cast<std::size_t>(options.width);
  return fits ? since + " " + until + "\n\n" : since + "\n      " + until + "\n\n";
}

// ---- table --------------------------------------------------------------

// Cells by row; labels left-aligned, numbers right-aligned.
struct Grid {
  std::size_t label_columns = 0;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> body;
  std::optional<std::vector<std::string>> footer; // the TOTAL line
};

std::vector<std::string> header_cells(const Options& options) {
  std::vector<std::string> cells;
  for (GroupBy key : options.group_by) {
    cells.emplace_back(key_entry(key).header);
  }
  if (cells.empty()) {
    cells.emplace_back(); // the column of the TOTAL label
  }
  for (const auto& counter : k_counters) {
    cells.emplace_back(counter.header);
  }
  if (grouped_by_sub(options)) {
    cells.emplace_back(k_limit_header);
    cells.emplace_back(k_remaining_header);
  }
  return cells;
}

void add_counter_cells(std::vector<std::string>& cells, const UsageRow& row) {
  for (const auto& counter : k_counters) {
    cells.push_back(with_separators(counter.get(row)));
  }
}

std::vector<std::string> body_cells(const UsageRow& row, const Options& options, const QuotaMap& quotas) {
  std::vector<std::string> cells;
  for (GroupBy key : options.group_by) {
    cells.push_back(fit(printable(key_value(row, key)), k_max_label));
  }
  add_counter_cells(cells, row);
  if (grouped_by_sub(options)) {
    const auto quota = quota_of(row.subject, quotas);
    cells.push_back(quota.limit ? with_separators(*quota.limit) : std::string(k_unlimited));
    cells.push_back(quota.remaining ? with_separators(*quota.remaining) : std::string(k_unlimited));
  }
  return cells;
}

std::vector<std::string> footer_cells(const UsageRow& totals, const Grid& grid) {
  std::vector<std::string> cells(grid.label_columns);
  cells.front() = "TOTAL";
  add_counter_cells(cells, totals);
  cells.resize(grid.header.size());
  return cells;
}

Grid make_grid(const std::vector<UsageRow>& rows, const Options& options, const QuotaMap& quotas) {
  Grid grid;
  grid.header = header_cells(options);
  grid.label_columns = std::max<std::size_t>(1, options.group_by.size());
  // Ungrouped, the one row is the total: show it once, as the TOTAL line.
  if (!options.group_by.empty()) {
    for (const auto& row : rows) {
      grid.body.push_back(body_cells(row, options, quotas));
    }
  }
  if (!rows.empty()) {
    grid.footer = footer_cells(totals_of(rows), grid);
  }
  return grid;
}

std::vector<std::size_t> column_widths(const Grid& grid) {
  std::vector<std::size_t> widths(grid.header.size(), 0);
  auto widen = [&widths](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      widths[i] = std::max(widths[i], columns_of(cells[i]));
    }
  };
  widen(grid.header);
  std::for_each(grid.body.begin(), grid.body.end(), widen);
  if (grid.footer) {
    widen(*grid.footer);
  }
  return widths;
}

// Append one table line (cells padded to `widths`, numbers right-aligned,
// no trailing blanks) to `out`, in place: ~25 000 lines for a month by sub,day,model.
void append_grid_line(std::string& out, const std::vector<std::string>& cells,
                      const std::vector<std::size_t>& widths, std::size_t label_columns) {
  const std::size_t start = out.size();
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const std::size_t used = columns_of(cells[i]);
    const std::size_t fill = widths[i] > used ? widths[i] - used : 0;
    out.append(i == 0 ? 0 : 2, ' ');
    if (i >= label_columns) {
      out.append(fill, ' ');
    }
    out += cells[i];
    if (i < label_columns) {
      out.append(fill, ' ');
    }
  }
  const std::size_t last = out.find_last_not_of(' ');
  out.resize(last == std::string::npos || last < start ? start : last + 1);
  out += '\n';
}

std::string render_table(const std::vector<UsageRow>& rows, const Options& options, const QuotaMap& quotas) {
  const Grid grid = make_grid(rows, options, quotas);
  const auto widths = column_widths(grid);
  std::string out = title(options);
  append_grid_line(out, grid.header, widths, grid.label_columns);
  for (const auto& cells : grid.body) {
    append_grid_line(out, cells, widths, grid.label_columns);
  }
  if (grid.footer) {
    std::vector<std::string> rule;
    for (std::size_t width : widths) {
      rule.emplace_back(width, '-');
    }
    append_grid_line(out, rule, widths, grid.label_columns);
    append_grid_line(out, *grid.footer, widths, grid.label_columns);
  }
  return out;
}

// ---- chart --------------------------------------------------------------

// `value` of `max` as a bar `width` columns wide, in eighths of a column; a
// non-zero value shows at least one eighth.
std::string bar(std::int64_t value, std::int64_t max, std::size_t width) {
  std::size_t eighths = 0;
  if (value > 0 && max > 0) {
    const double share = static_cast<double>(value) / static_cast<double>(max);
    const auto rounded = std::llround(share * static_cast<double>(width * 8));
    eighths = std::clamp<std::size_t>(static_cast<std::size_t>(rounded), 1, width * 8);
  }
  std::string out;
  for (std::size_t i = 0; i < eighths / 8; ++i) {
    out += k_full_block;
  }
  out += k_eighths[eighths % 8];
  return padded(out, width, false);
}

std::string chart_label(const UsageRow& row, const Options& options) {
  std::string label;
  for (GroupBy key : options.group_by) {
    label += label.empty() ? "" : " ";
    label += printable(key_value(row, key));
  }
  return label.empty() ? "total" : label;
}

struct ChartLayout {
  std::size_t label = 0;
  std::size_t bar = 0;
  std::size_t number = 0;
};

// Columns for labels, bars and numbers so that a line fits `options.width`.
ChartLayout chart_layout(const std::vector<UsageRow>& rows, const Options& options, std::int64_t total) {
  ChartLayout layout;
  layout.number = columns_of(with_separators(total));
  std::size_t widest_label = columns_of("TOTAL");
  for (const auto& row : rows) {
    widest_label = std::max(widest_label, columns_of(chart_label(row, options)));
  }
  const auto width = static_cast<std::size_t>(std::max(options.width, 1));
  const std::size_t room = width > layout.number + 2 ? width - layout.number - 2 : 1;
  // Labels take at most half the room: the bars are the point.
  layout.label = std::min(widest_label, room / 2);
  layout.bar = std::max<std::size_t>(1, room - layout.label);
  return layout;
}

std::string render_chart(const std::vector<UsageRow>& rows, const Options& options) {
  std::string out = title(options);
  if (rows.empty()) {
    return out + "no usage in this range\n";
  }
  const std::int64_t total = totals_of(rows).total_tokens();
  const auto layout = chart_layout(rows, options, total);
  std::int64_t max = 0;
  for (const auto& row : rows) {
    max = std::max(max, row.total_tokens());
  }
  for (const auto& row : rows) {
    const std::string label = padded(fit(chart_label(row, options), layout.label), layout.label, false);
    out += fmt::format("{} {} {}\n", label, bar(row.total_tokens(), max, layout.bar),
                       padded(with_separators(row.total_tokens()), layout.number, true));
  }
  const std::string footer = padded(fit("TOTAL", layout.label), layout.label + layout.bar + 2, false);
  return out + footer + with_separators(total) + "\n";
}

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

// Data rows only: a TOTAL line would be double-counted by whoever sums the column.
std::string render_csv(const std::vector<UsageRow>& rows, const Options& options, const QuotaMap& quotas) {
  std::string out = csv_line(csv_header(options));
  for (const auto& row : rows) {
    out += csv_line(csv_row(row, options, quotas));
  }
  return out;
}

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(' ');
  if (first == std::string_view::npos) {
    return {};
  }
  return std::string(text.substr(first, text.find_last_not_of(' ') - first + 1));
}

// User input echoed in a message, escaped.
std::string echoed(std::string_view text) {
  return json::quote(json::Json(std::string(text)));
}

std::string render_shown(const std::vector<UsageRow>& rows, const Options& options, const QuotaMap& quotas) {
  switch (options.format) {
  case Format::json:
    return render_json(rows, options, quotas);
  case Format::csv:
    return render_csv(rows, options, quotas);
  case Format::table:
    break;
  }
  return options.chart ? render_chart(rows, options) : render_table(rows, options, quotas);
}

} // namespace

Result<std::vector<store::GroupBy>> parse_group_by(std::string_view text) {
  std::vector<GroupBy> keys;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string name = trimmed(text.substr(start, comma - start));
    const auto* entry =
        std::find_if(k_keys.begin(), k_keys.end(), [&](const KeyName& k) { return k.name == name; });
    if (entry == k_keys.end()) {
      return fail(Errc::config, fmt::format("unknown grouping key {} in {}; use sub, day or model, "
                                            "or several separated by commas (sub,day)",
                                            echoed(name), echoed(text)));
    }
    if (std::find(keys.begin(), keys.end(), entry->key) != keys.end()) {
      return fail(Errc::config,
                  fmt::format("{} appears twice in {}; name each key once", echoed(name), echoed(text)));
    }
    keys.push_back(entry->key);
    start = comma + 1;
  }
  return keys;
}

Result<Format> parse_format(std::string_view text) {
  if (text == "table") {
    return Format::table;
  }
  if (text == "json") {
    return Format::json;
  }
  if (text == "csv") {
    return Format::csv;
  }
  return fail(Errc::config, fmt::format("unknown format {}; use table, json or csv", echoed(text)));
}

std::string render(const std::vector<store::UsageRow>& rows, const Options& options,
                   const std::map<std::string, store::SubjectQuota>& quotas) {
  // Copy (a large report's rows) only when there is something to drop.
  const bool all_shown =
      std::none_of(rows.begin(), rows.end(), [](const UsageRow& row) { return row.requests == 0; });
  return all_shown ? render_shown(rows, options, quotas) : render_shown(shown_rows(rows), options, quotas);
}

} // namespace claudegate::report
