// SPDX-License-Identifier: Apache-2.0
#include "config_fields.hpp"

#include "claudegate/base/duration.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <system_error>

namespace claudegate::config::fields {

namespace {

// Levenshtein distance, to suggest the key a typo meant.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0U : 1U)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

struct SizeUnit {
  std::string_view suffix;
  std::int64_t bytes;
};

constexpr std::array<SizeUnit, 8> k_size_units{{{"", 1},
                                                {"B", 1},
                                                {"KiB", 1024},
                                                {"MiB", 1024 * 1024},
                                                {"GiB", 1024 * 1024 * 1024},
                                                {"KB", 1000},
                                                {"MB", 1000 * 1000},
                                                {"GB", 1000 * 1000 * 1000}}};

// "32MiB", "500KB" or "1048576" as bytes; nullopt when not such a size.
std::optional<std::int64_t> parse_size(std::string_view text) {
  std::int64_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end == text.data() || number < 0) {
    return std::nullopt;
  }
  const std::string_view suffix = text.substr(static_cast<std::size_t>(end - text.data()));
  for (const auto& unit : k_size_units) {
    std::int64_t bytes = 0;
    if (unit.suffix == suffix && !__builtin_mul_overflow(number, unit.bytes, &bytes)) {
      return bytes;
    }
  }
  return std::nullopt;
}

} // namespace

std::unexpected<Error> unknown_key(const Context& ctx, const toml::key& key, std::string_view table,
                                   std::span<const std::string_view> known) {
  const auto closest = std::min_element(known.begin(), known.end(), [&](auto a, auto b) {
    return edit_distance(key.str(), a) < edit_distance(key.str(), b);
  });
  const std::string where = table.empty() ? std::string("at the top level") : fmt::format("in [{}]", table);
  if (closest != known.end() && edit_distance(key.str(), *closest) <= 2) {
    return ctx.fail_at(
        key.source(), fmt::format("unknown key \"{}\" {}; did you mean \"{}\"?", key.str(), where, *closest));
  }
  return ctx.fail_at(key.source(), fmt::format("unknown key \"{}\" {}; known keys there: {}", key.str(),
                                               where, fmt::join(known, ", ")));
}

Result<void> set_string(const Context& ctx, const Field& field, std::string& out) {
  const auto* value = field.node.as_string();
  if (value == nullptr || value->get().empty()) {
    return ctx.fail_at(field.node.source(), fmt::format("{} must be a non-empty string", field.name));
  }
  out = value->get();
  return {};
}

// A duration as "15m" or whole seconds, at least `min` seconds.
Result<void> set_duration(const Context& ctx, const Field& field, std::int64_t min, std::int64_t& out) {
  std::string text;
  if (const auto* seconds = field.node.as_integer()) {
    text = std::to_string(seconds->get());
  } else if (const auto* str = field.node.as_string()) {
    text = str->get();
  } else {
    return ctx.fail_at(field.node.source(),
                       fmt::format("{} must be a duration such as \"15m\" or whole seconds", field.name));
  }
  auto parsed = duration::parse(text);
  if (!parsed) {
    return ctx.fail_at(field.node.source(), fmt::format("{}: {}", field.name, parsed.error().message));
  }
  if (*parsed < min) {
    return ctx.fail_at(field.node.source(),
                       fmt::format("{} must be at least {}", field.name, duration::format(min)));
  }
  out = *parsed;
  return {};
}

Result<void> set_integer(const Context& ctx, const Field& field, std::int64_t min, std::int64_t max,
                         std::int64_t& out) {
  const auto* value = field.node.as_integer();
  if (value == nullptr || value->get() < min || value->get() > max) {
    return ctx.fail_at(field.node.source(),
                       fmt::format("{} must be a whole number from {} to {}", field.name, min, max));
  }
  out = value->get();
  return {};
}

// A plan limit: a whole number of at least `min`, or "unlimited".
Result<void> set_limit(const Context& ctx, const Field& field, std::int64_t min,
                       std::optional<std::int64_t>& out) {
  if (const auto* str = field.node.as_string(); str != nullptr && str->get() == "unlimited") {
    out = std::nullopt;
    return {};
  }
  const auto* value = field.node.as_integer();
  if (value == nullptr || value->get() < min) {
    return ctx.fail_at(
        field.node.source(),
        fmt::format("{} must be a whole number of at least {}, or \"unlimited\"", field.name, min));
  }
  out = value->get();
  return {};
}

Result<void> set_size(const Context& ctx, const Field& field, std::int64_t& out) {
  std::optional<std::int64_t> bytes;
  if (const auto* number = field.node.as_integer()) {
    bytes = number->get();
  } else if (const auto* str = field.node.as_string()) {
    bytes = parse_size(str->get());
  }
  if (!bytes || *bytes < 1) {
    return ctx.fail_at(
        field.node.source(),
        fmt::format("{} must be a positive size in bytes, e.g. 33554432 or \"32MiB\"", field.name));
  }
  out = *bytes;
  return {};
}

Result<void> set_upstream(const Context& ctx, const Field& field, std::string& out) {
  std::string url;
  if (auto read = set_string(ctx, field, url); !read) {
    return read;
  }
  if (!url.starts_with("https://") && !url.starts_with("http://")) {
    return ctx.fail_at(field.node.source(),
                       fmt::format("{} must be an http:// or https:// URL, got \"{}\"", field.name, url));
  }
  out = std::move(url);
  return {};
}

Result<void> set_globs(const Context& ctx, const Field& field, std::vector<std::string>& out) {
  const auto* array = field.node.as_array();
  const auto usage = fmt::format("{} must be a list of model globs, e.g. [\"claude-*haiku*\"]", field.name);
  if (array == nullptr) {
    return ctx.fail_at(field.node.source(), usage);
  }
  std::vector<std::string> globs;
  for (const auto& element : *array) {
    const auto* glob = element.as_string();
    if (glob == nullptr || glob->get().empty()) {
      return ctx.fail_at(element.source(), usage);
    }
    globs.push_back(glob->get());
  }
  out = std::move(globs);
  return {};
}

Result<const toml::table*> table_of(const Context& ctx, const Field& field) {
  const auto* table = field.node.as_table();
  if (table == nullptr) {
    return ctx.fail_at(field.node.source(), fmt::format("{} must be a table ([{}])", field.name, field.name));
  }
  return table;
}

Result<void> set_over_cap(const Context& ctx, const Field& field, OverCap& out) {
  const auto* str = field.node.as_string();
  if (str == nullptr || (str->get() != "clamp" && str->get() != "reject")) {
    return ctx.fail_at(field.node.source(),
                       fmt::format("{} must be \"clamp\" (lower max_tokens to what the plan "
                                   "and today's quota allow) or \"reject\" (answer 400/429)",
                                   field.name));
  }
  out = str->get() == "clamp" ? OverCap::clamp : OverCap::reject;
  return {};
}

} // namespace claudegate::config::fields
