// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/store/store.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Rendering of usage-report: aggregated ledger rows as a table, JSON, CSV
// or terminal bar chart. Pure functions over store::UsageRow; no I/O.
namespace claudegate::report {

enum class Format { table, json, csv };

struct Options {
  std::vector<store::GroupBy> group_by; // as given by --by, in order
  Format format = Format::table;
  bool chart = false;               // horizontal bars of total tokens
  int width = 80;                   // terminal columns for the table and chart
  std::optional<UnixSeconds> since; // the range reported: title and JSON
  std::optional<UnixSeconds> until; // exclusive
};

// Parse --by text "sub", "day,model", … into keys; fails with config naming
// the bad key and the accepted ones (sub, day, model); duplicates refused.
Result<std::vector<store::GroupBy>> parse_group_by(std::string_view text);

// Parse --format text; fails with config.
Result<Format> parse_format(std::string_view text);

// Render `rows` under `options`. When grouped by sub, `quotas` (by subject)
// adds today's limit and remaining columns. An empty `rows` renders an empty
// table (header only), JSON with "rows": [] or a header-only CSV. `chart`
// applies to the table format only (bars instead of the table).
std::string render(const std::vector<store::UsageRow>& rows, const Options& options,
                   const std::map<std::string, store::SubjectQuota>& quotas);

} // namespace claudegate::report
