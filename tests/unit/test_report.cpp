// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/report.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

using namespace claudegate;
using store::GroupBy;
using store::UsageRow;

namespace {

using Quotas = std::map<std::string, store::SubjectQuota>;

UsageRow row(std::string subject, std::string day, std::string model, std::int64_t requests,
             std::int64_t input, std::int64_t output, std::int64_t cache_read = 0,
             std::int64_t cache_write = 0) {
  UsageRow r;
  r.subject = std::move(subject);
  r.day = std::move(day);
  r.model = std::move(model);
  r.requests = requests;
  r.input_tokens = input;
  r.output_tokens = output;
  r.cache_read_tokens = cache_read;
  r.cache_write_tokens = cache_write;
  return r;
}

report::Options options(std::vector<GroupBy> group_by, report::Format format = report::Format::table) {
  report::Options opt;
  opt.group_by = std::move(group_by);
  opt.format = format;
  return opt;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    lines.push_back(line);
  }
  return lines;
}

// Terminal columns of UTF-8 `text` (one per code point).
std::size_t columns_of(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(
      text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Code points of `line` that are bar glyphs (full or partial blocks).
std::size_t bar_glyphs(const std::string& line) {
  std::size_t count = 0;
  for (const char* glyph : {"█", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}) {
    for (auto at = line.find(glyph); at != std::string::npos; at = line.find(glyph, at + 1)) {
      ++count;
    }
  }
  return count;
}

const std::vector<UsageRow> k_sub_day = {
    row("alice", "2026-11-22", "", 2, 1000, 200, 50, 5),
    row("alice", "2026-11-23", "", 3, 1234567, 300),
    row("bob", "2026-11-23", "", 1, 10, 20, 0, 7),
};

} // namespace

TEST_CASE("report: parse_group_by keeps the order given") {
  CHECK(report::parse_group_by("sub").value() == std::vector{GroupBy::sub});
  CHECK(report::parse_group_by("day,sub").value() == std::vector{GroupBy::day, GroupBy::sub});
  CHECK(report::parse_group_by("sub, day ,model").value()
        == std::vector{GroupBy::sub, GroupBy::day, GroupBy::model});
}

TEST_CASE("report: parse_group_by refuses unknown, empty and repeated keys") {
  for (const char* text : {"", "user", "sub,", ",sub", "sub,,day", "Sub", "sub;day"}) {
    CAPTURE(text);
    const auto parsed = report::parse_group_by(text);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == Errc::config);
    CHECK(contains(parsed.error().message, "sub, day or model"));
  }
  const auto twice = report::parse_group_by("sub,day,sub");
  REQUIRE_FALSE(twice);
  CHECK(twice.error().code == Errc::config);
  CHECK(contains(twice.error().message, "\"sub\" appears twice"));
}

TEST_CASE("report: parse_format") {
  CHECK(report::parse_format("table").value() == report::Format::table);
  CHECK(report::parse_format("json").value() == report::Format::json);
  CHECK(report::parse_format("csv").value() == report::Format::csv);
  const auto bad = report::parse_format("yaml");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == Errc::config);
  CHECK(contains(bad.error().message, "table, json or csv"));
}

TEST_CASE("report: an empty ledger renders a header-only table, CSV and empty JSON rows") {
  // Ungrouped, the store may answer one all-zero aggregate row: the same as none.
  for (const auto& rows : {std::vector<UsageRow>{}, std::vector{row("", "", "", 0, 0, 0)}}) {
    const auto table = lines_of(report::render(rows, options({}), {}));
    REQUIRE(table.size() == 1);
    for (const char* header : {"REQUESTS", "INPUT", "OUTPUT", "CACHE-READ", "CACHE-WRITE", "TOTAL"}) {
      CHECK(contains(table[0], header));
    }
    CHECK(lines_of(report::render(rows, options({GroupBy::sub}), {})).size() == 1);
    const auto csv = lines_of(report::render(rows, options({GroupBy::sub}, report::Format::csv), {}));
    REQUIRE(csv.size() == 1);
    CHECK(csv[0]
          == "sub,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,"
             "total_tokens,daily_limit,remaining_today");
    const auto doc = nlohmann::json::parse(report::render(rows, options({}, report::Format::json), {}));
    CHECK(doc["rows"].empty());
    CHECK(doc["totals"]["requests"] == 0);
    CHECK(doc["totals"]["total_tokens"] == 0);
  }
}

TEST_CASE("report: ungrouped table is a single TOTAL line with thousands separators") {
  const auto lines = lines_of(report::render({row("", "", "", 12, 1234567, 1000, 20, 3)}, options({}), {}));
  REQUIRE(lines.size() == 3); // header, rule, TOTAL
  CHECK(lines[2].starts_with("TOTAL"));
  CHECK(contains(lines[2], "1,234,567"));
  CHECK(contains(lines[2], "1,000"));
  CHECK(lines[2].ends_with("1,235,590"));
}

TEST_CASE("report: grouped table lists rows in order, numbers right-aligned, with a TOTAL line") {
  const auto lines = lines_of(report::render(k_sub_day, options({GroupBy::sub, GroupBy::day}), {}));
  REQUIRE(lines.size() == 6); // header, 3 rows, rule, TOTAL
  CHECK(lines[0].starts_with("SUBJECT"));
  CHECK(contains(lines[0], "DAY"));
  CHECK(lines[1].starts_with("alice"));
  CHECK(contains(lines[1], "2026-11-22"));
  CHECK(lines[3].starts_with("bob"));
  CHECK(lines[5].starts_with("TOTAL"));
  // Requests 2+3+1 = 6; total tokens 1255+1234867+37 = 1,236,159.
  CHECK(lines[5].ends_with("1,236,159"));
  CHECK(contains(lines[5], " 6 "));
  // Right-aligned: header and rows end at the same column, TOTAL at the TOTAL column.
  for (std::size_t i = 1; i <= 3; ++i) {
    CHECK(columns_of(lines[i]) == columns_of(lines[0]));
  }
  CHECK(lines[0].find("TOTAL") + 5 == lines[5].size());
}

TEST_CASE("report: each grouping key adds its column, in --by order") {
  const std::vector rows = {row("alice", "2026-11-23", "claude-a", 1, 1, 1)};
  CHECK(lines_of(report::render(rows, options({GroupBy::model}), {}))[0].starts_with("MODEL"));
  const auto day_model = lines_of(report::render(rows, options({GroupBy::day, GroupBy::model}), {}));
  CHECK(day_model[0].starts_with("DAY"));
  CHECK(day_model[0].find("MODEL") < day_model[0].find("REQUESTS"));
  CHECK(day_model[1].starts_with("2026-11-23  claude-a"));
  CHECK_FALSE(contains(day_model[1], "alice"));
  const auto all = lines_of(report::render(rows, options({GroupBy::model, GroupBy::sub, GroupBy::day}), {}));
  CHECK(all[1].starts_with("claude-a  alice    2026-11-23"));
}

TEST_CASE("report: grouped by sub adds today's limit and remaining quota") {
  const std::vector rows = {row("alice", "", "", 1, 100, 0), row("bob", "", "", 1, 100, 0),
                            row("carol", "", "", 1, 100, 0), row("dave", "", "", 1, 100, 0)};
  const Quotas quotas = {{"alice", {"alice", 2500, 10000}},
                         {"bob", {"bob", 50, std::nullopt}},
                         {"carol", {"carol", 12000, 10000}}}; // dave: not known
  const auto lines = lines_of(report::render(rows, options({GroupBy::sub}), quotas));
  REQUIRE(lines.size() == 7);
  CHECK(contains(lines[0], "DAILY LIMIT"));
  CHECK(contains(lines[0], "LEFT TODAY"));
  CHECK(lines[1].ends_with("10,000       7,500"));
  CHECK(lines[2].ends_with("∞           ∞"));
  CHECK(lines[3].ends_with("10,000           0")); // used beyond the limit: never negative
  CHECK(lines[4].ends_with("∞           ∞"));

  const auto doc =
      nlohmann::json::parse(report::render(rows, options({GroupBy::sub}, report::Format::json), quotas));
  CHECK(doc["rows"][0]["daily_limit"] == 10000);
  CHECK(doc["rows"][0]["remaining_today"] == 7500);
  CHECK(doc["rows"][1]["daily_limit"].is_null());
  CHECK(doc["rows"][1]["remaining_today"].is_null());
  CHECK(doc["rows"][2]["remaining_today"] == 0);

  const auto csv = lines_of(report::render(rows, options({GroupBy::sub}, report::Format::csv), quotas));
  CHECK(csv[1] == "alice,1,100,0,0,0,100,10000,7500");
  CHECK(csv[2] == "bob,1,100,0,0,0,100,,");
}

TEST_CASE("report: no quota columns unless grouped by sub") {
  const Quotas quotas = {{"alice", {"alice", 2500, 10000}}};
  const std::vector rows = {row("", "2026-11-23", "", 1, 100, 0)};
  CHECK_FALSE(contains(report::render(rows, options({GroupBy::day}), quotas), "LIMIT"));
  CHECK_FALSE(contains(report::render(rows, options({GroupBy::day}, report::Format::csv), quotas), "limit"));
  CHECK_FALSE(contains(report::render(rows, options({GroupBy::day}, report::Format::json), quotas), "limit"));
}

TEST_CASE("report: JSON has the range, keys, rows and totals") {
  auto opt = options({GroupBy::sub, GroupBy::day}, report::Format::json);
  opt.since = 1795392000;
  opt.until = 1795478400;
  const auto doc = nlohmann::json::parse(report::render(k_sub_day, opt, {}));
  CHECK(doc["since"] == "2026-11-23T00:00:00Z");
  CHECK(doc["until"] == "2026-11-24T00:00:00Z");
  CHECK(doc["group_by"] == nlohmann::json::array({"sub", "day"}));
  REQUIRE(doc["rows"].size() == 3);
  const auto& first = doc["rows"][0];
  CHECK(first["sub"] == "alice");
  CHECK(first["day"] == "2026-11-22");
  CHECK_FALSE(first.contains("model"));
  CHECK(first["requests"] == 2);
  CHECK(first["input_tokens"] == 1000);
  CHECK(first["output_tokens"] == 200);
  CHECK(first["cache_read_tokens"] == 50);
  CHECK(first["cache_write_tokens"] == 5);
  CHECK(first["total_tokens"] == 1255);
  CHECK(doc["totals"]["requests"] == 6);
  CHECK(doc["totals"]["input_tokens"] == 1235577);
  CHECK(doc["totals"]["total_tokens"] == 1236159);
  CHECK(doc["rows"][0].contains("daily_limit"));
}

TEST_CASE("report: JSON survives ledger text that is not UTF-8") {
  const std::vector rows = {row("bad\xff\xfe", "", "", 1, 1, 1)};
  std::string text;
  CHECK_NOTHROW(text = report::render(rows, options({GroupBy::sub}, report::Format::json), {}));
  CHECK(nlohmann::json::parse(text)["rows"].size() == 1);
}

TEST_CASE("report: JSON escapes ledger text and keeps UTF-8") {
  const std::vector rows = {row("q\"b\\s\n\x01", "", "José ✓", 1, 1, 1)};
  const auto text = report::render(rows, options({GroupBy::sub, GroupBy::model}, report::Format::json), {});
  const auto doc = nlohmann::json::parse(text);
  CHECK(doc["rows"][0]["sub"] == "q\"b\\s\n\x01");
  CHECK(doc["rows"][0]["model"] == "José ✓");
  // Members in a fixed order: grouping keys first, then the counters.
  CHECK(contains(text, "{\"sub\": "));
  CHECK(text.find("\"model\"") < text.find("\"requests\""));
}

TEST_CASE("report: CSV quotes commas, quotes and line breaks (RFC 4180)") {
  const std::vector rows = {row("a,\"b\"", "", "m\nx", 1, 2, 3)};
  const auto text = report::render(rows, options({GroupBy::sub, GroupBy::model}, report::Format::csv), {});
  CHECK(contains(text, "\"a,\"\"b\"\"\",\"m\nx\",1,2,3,0,0,5,,\r\n"));
  CHECK(text.starts_with("sub,model,requests,"));
}

TEST_CASE("report: table cuts very long labels") {
  const std::vector rows = {row(std::string(200, 's'), "", "", 1, 1, 1)};
  const auto lines = lines_of(report::render(rows, options({GroupBy::sub}), {}));
  CHECK(lines[1].starts_with(std::string(31, 's') + "…  "));
}

TEST_CASE("report: table replaces control characters in ledger text") {
  const std::vector rows = {row("evil\x1b[2J", "", "", 1, 1, 1)};
  const auto text = report::render(rows, options({GroupBy::sub}), {});
  CHECK_FALSE(contains(text, "\x1b"));
  CHECK(contains(text, "evil?[2J"));
}

TEST_CASE("report: chart has one bar per row, fits the width and scales to the largest row") {
  std::vector rows = k_sub_day;
  rows.push_back(row(std::string(120, 'x'), "2026-11-23", "", 1, 500000, 117283)); // half of alice's second
  for (int width : {80, 60, 40}) {
    CAPTURE(width);
    auto opt = options({GroupBy::sub, GroupBy::day});
    opt.chart = true;
    opt.width = width;
    const auto lines = lines_of(report::render(rows, opt, {}));
    REQUIRE(lines.size() == 5); // 4 bars and TOTAL
    for (const auto& line : lines) {
      CHECK(columns_of(line) <= static_cast<std::size_t>(width));
    }
    CHECK(lines[0].starts_with(width >= 60 ? "alice 2026-11-22" : "alice 2026"));
    CHECK(lines[1].ends_with("1,234,867"));
    CHECK(contains(lines[3], "…"));
    CHECK(lines[4].starts_with("TOTAL"));
    CHECK(lines[4].ends_with("1,853,442"));
    const std::size_t full = bar_glyphs(lines[1]);
    CHECK(full >= static_cast<std::size_t>(width) / 3);
    CHECK(bar_glyphs(lines[3]) == (full + 1) / 2);
    CHECK(bar_glyphs(lines[2]) == 1); // tiny but visible: one eighth
    CHECK(contains(lines[2], "▏"));
  }
}

TEST_CASE("report: the title names the range, on two lines when narrow") {
  auto opt = options({});
  opt.since = 1795392000; // 2026-11-23T00:00:00Z
  opt.until = 1795428000; // 2026-11-23T10:00:00Z
  CHECK(report::render({}, opt, {}).starts_with("usage since 2026-11-23 until 2026-11-23T10:00:00Z\n\n"));
  opt.width = 40;
  opt.chart = true;
  CHECK(report::render({}, opt, {})
        == "usage since 2026-11-23\n      until 2026-11-23T10:00:00Z\n\nno usage in this range\n");
}

TEST_CASE("report: chart of an empty range says so") {
  auto opt = options({GroupBy::sub});
  opt.chart = true;
  CHECK(report::render({}, opt, {}) == "no usage in this range\n");
}

TEST_CASE("report: JSON bytes are pinned: member order, separators, and ledger text escaped or replaced") {
  const std::string odd_subject = "caf\xc3\xa9 \"q\" \\";
  const std::string bad_model = "mod\xff\n\x01";
  const std::vector<UsageRow> rows = {row(odd_subject, "2026-11-23", bad_model, 2, 10, 5),
                                      row("alice", "2026-11-24", "m", 1, 1, 1, 2, 3)};
  auto opt = options({GroupBy::sub, GroupBy::model}, report::Format::json);
  opt.since = 1'795'392'000; // 2026-11-23T00:00:00Z
  const std::string text = report::render(rows, opt, {});
  const std::string expected =
      "{\n  \"since\": \"2026-11-23T00:00:00Z\",\n  \"until\": null,\n  \"group_by\": [\"sub\", \"model\"],\n"
      "  \"rows\": [\n"
      "    {\"sub\": \"caf\xc3\xa9 \\\"q\\\" \\\\\", \"model\": \"mod\xef\xbf\xbd\\n\\u0001\", \"requests\": "
      "2, "
      "\"input_tokens\": 10, \"output_tokens\": 5, \"cache_read_tokens\": 0, \"cache_write_tokens\": 0, "
      "\"total_tokens\": 15, \"estimated_requests\": 0, \"daily_limit\": null, \"remaining_today\": null},\n"
      "    {\"sub\": \"alice\", \"model\": \"m\", \"requests\": 1, \"input_tokens\": 1, \"output_tokens\": "
      "1, "
      "\"cache_read_tokens\": 2, \"cache_write_tokens\": 3, \"total_tokens\": 7, \"estimated_requests\": 0, "
      "\"daily_limit\": null, \"remaining_today\": null}\n"
      "  ],\n"
      "  \"totals\": {\"requests\": 3, \"input_tokens\": 11, \"output_tokens\": 6, \"cache_read_tokens\": 2, "
      "\"cache_write_tokens\": 3, \"total_tokens\": 22, \"estimated_requests\": 0}\n}\n";
  CHECK(text == expected);
  CHECK(report::render({}, options({GroupBy::day}, report::Format::json), {})
        == "{\n  \"since\": null,\n  \"until\": null,\n  \"group_by\": [\"day\"],\n  \"rows\": [],\n"
           "  \"totals\": {\"requests\": 0, \"input_tokens\": 0, \"output_tokens\": 0, "
           "\"cache_read_tokens\": 0, "
           "\"cache_write_tokens\": 0, \"total_tokens\": 0, \"estimated_requests\": 0}\n}\n");
}
