// SPDX-License-Identifier: Apache-2.0
#include "report_format.hpp"

#include "claudegate/base/text.hpp"

namespace claudegate::report {

namespace {

using namespace detail;

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
  for (const std::string_view item : text::split(text, ',')) {
    const std::string name(text::trim(item, " "));
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
