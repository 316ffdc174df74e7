// SPDX-License-Identifier: Apache-2.0
#include "report_format.hpp"

#include <cmath>

namespace claudegate::report::detail {

namespace {

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

} // namespace

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

} // namespace claudegate::report::detail
