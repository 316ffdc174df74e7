// SPDX-License-Identifier: Apache-2.0
#include "cmd_usage_report.hpp"

#include "options.hpp"

#include <claudegate/base/duration.hpp>
#include <claudegate/store/report.hpp>
#include <claudegate/store/report_query.hpp>

#include <fmt/core.h>

#include <sys/ioctl.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace claudegate::app {

namespace {

constexpr int k_default_width = 80;

struct UsageReportOptions {
  report::Filters filters; // --since, --until, --sub, --model, --by
  std::string format = "table";
  bool chart = false;
};

// A CLI11 validator that accepts what `parse` accepts and reports its message.
template <typename Parse> CLI::Validator parsed_by(Parse parse, std::string name) {
  return CLI::Validator(
      [parse](const std::string& text) {
        auto parsed = parse(text);
        return parsed ? std::string{} : parsed.error().message;
      },
      std::move(name));
}

// Columns of the output: $COLUMNS when set (also when piped), else the
// terminal's width, else 80.
int output_width() {
  if (const char* columns = std::getenv("COLUMNS")) {
    const std::string_view text(columns);
    int value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc{} && end == text.data() + text.size() && value > 0) {
      return value;
    }
  }
  winsize size{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    return size.ws_col;
  }
  return k_default_width;
}

report::Options render_options(const UsageReportOptions& opt, const store::UsageQuery& query) {
  report::Options options;
  options.group_by = query.group_by;
  options.format = report::parse_format(opt.format).value_or(report::Format::table);
  options.chart = opt.chart;
  options.width = output_width();
  options.since = query.since;
  options.until = query.until;
  return options;
}

ExitCode run_usage_report(const UsageReportOptions& opt, Context& ctx) {
  const auto errors = opt.format == "json" ? OutputFormat::json : OutputFormat::text;
  if (opt.chart && opt.format != "table") {
    return ctx.report({Errc::config, "--chart draws bars in the table format; drop --chart or --format"},
                      errors);
  }
  const UnixSeconds now = ctx.clock().now();
  auto query = report::make_query(opt.filters, now, "--"); // texts already validated
  if (!query) {
    return ctx.report(query.error(), errors);
  }
  auto store = ctx.store();
  auto rows = store ? (*store)->usage(*query) : propagate(store);
  if (!rows) {
    return ctx.report(rows.error(), errors);
  }
  auto quotas = report::quotas_for(**store, *query, now);
  if (!quotas) {
    return ctx.report(quotas.error(), errors);
  }
  fmt::print("{}", report::render(*rows, render_options(opt, *query), *quotas));
  return ExitCode::success;
}

} // namespace

void setup_usage_report(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<UsageReportOptions>();
  auto* cmd =
      app.add_subcommand("usage-report", "Report token usage from the ledger, by subject, day or model");
  cmd->add_option("--since", opt->filters.since,
                  "from this time, inclusive (Unix seconds, RFC 3339 or YYYY-MM-DD; "
                  "default: start of today, UTC)")
      ->check(time_validator());
  cmd->add_option("--until", opt->filters.until, "up to this time, exclusive (default: end of today, UTC)")
      ->check(time_validator());
  cmd->add_option("--sub", opt->filters.subject, "only this subject");
  cmd->add_option("--model", opt->filters.model, "only this model");
  cmd->add_option("--by", opt->filters.by, "group by sub, day or model, or several: sub,day")
      ->check(parsed_by(report::parse_group_by, "sub|day|model[,…]"));
  cmd->add_option("--format", opt->format, "table (default), json or csv")
      ->check(parsed_by(report::parse_format, "table|json|csv"));
  cmd->add_flag("--chart", opt->chart, "draw total tokens per row as horizontal bars ($COLUMNS wide)");
  cmd->callback([opt, &ctx] { ctx.set_exit(run_usage_report(*opt, ctx)); });
}

} // namespace claudegate::app
