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

// The strings of array `field`; `usage` is the message when it is not an
// array or an element is not a non-empty string.
Result<std::vector<std::string>> read_strings(const Context& ctx, const Field& field,
                                              const std::string& usage) {
  const auto* array = field.node.as_array();
  if (array == nullptr) {
    return ctx.fail_at(field.node.source(), usage);
  }
  std::vector<std::string> strings;
  for (const auto& element : *array) {
    const auto* text = element.as_string();
    if (text == nullptr || text->get().empty()) {
      return ctx.fail_at(element.source(), usage);
    }
    strings.push_back(text->get());
  }
  return strings;
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

std::string dotted(std::string_view table, std::string_view key) {
  return table.empty() ? std::string(key) : fmt::format("{}.{}", table, key);
}

Result<const toml::table*> table_of(const Context& ctx, const Field& field) {
  const auto* table = field.node.as_table();
  if (table == nullptr) {
    return ctx.fail_at(field.node.source(), fmt::format("{} must be a table ([{}])", field.name, field.name));
  }
  return table;
}

Result<std::string> Text::read(const Context& ctx, const Field& field) const {
  const auto* value = field.node.as_string();
  if (value == nullptr || value->get().empty()) {
    return ctx.fail_at(field.node.source(), fmt::format("{} must be a non-empty string", field.name));
  }
  return value->get();
}

std::string Text::show(const std::string& value) const {
  return value.empty() ? std::string() : fmt::format("\"{}\"", value);
}

Result<std::string> Url::read(const Context& ctx, const Field& field) const {
  auto url = Text{}.read(ctx, field);
  if (url && !url->starts_with("https://") && !url->starts_with("http://")) {
    return ctx.fail_at(field.node.source(),
                       fmt::format("{} must be an http:// or https:// URL, got \"{}\"", field.name, *url));
  }
  return url;
}

std::string Url::show(const std::string& value) const {
  return Text{}.show(value);
}

Result<std::int64_t> Duration::read(const Context& ctx, const Field& field) const {
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
  return *parsed;
}

std::string Duration::show(std::int64_t seconds) const {
  return fmt::format("\"{}\"", duration::format(seconds));
}

Result<std::int64_t> Integer::read(const Context& ctx, const Field& field) const {
  const auto* value = field.node.as_integer();
  if (value == nullptr || value->get() < min || value->get() > max) {
    return ctx.fail_at(field.node.source(),
                       fmt::format("{} must be a whole number from {} to {}", field.name, min, max));
  }
  return value->get();
}

std::string Integer::show(std::int64_t value) const {
  return std::to_string(value);
}

Result<std::optional<std::int64_t>> Limit::read(const Context& ctx, const Field& field) const {
  if (const auto* str = field.node.as_string(); str != nullptr && str->get() == "unlimited") {
    return std::nullopt;
  }
  const auto* value = field.node.as_integer();
  if (value == nullptr || value->get() < min) {
    return ctx.fail_at(
        field.node.source(),
        fmt::format("{} must be a whole number of at least {}, or \"unlimited\"", field.name, min));
  }
  return value->get();
}

std::string Limit::show(const std::optional<std::int64_t>& value) const {
  return value ? std::to_string(*value) : std::string("\"unlimited\"");
}

Result<std::int64_t> Size::read(const Context& ctx, const Field& field) const {
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
  return *bytes;
}

std::string Size::show(std::int64_t bytes) const {
  return std::to_string(bytes);
}

Result<std::vector<std::string>> Globs::read(const Context& ctx, const Field& field) const {
  return read_strings(ctx, field,
                      fmt::format("{} must be a list of model globs, e.g. [\"claude-*haiku*\"]", field.name));
}

std::string Globs::show(const std::vector<std::string>& globs) const {
  return fmt::format("{}", globs); // ["claude-haiku*", "claude-*sonnet*"]
}

// An empty list would lock everyone out of the route, surely not what was meant.
Result<std::vector<std::string>> Roles::read(const Context& ctx, const Field& field) const {
  const auto usage =
      fmt::format("{} must be a non-empty list of role names, e.g. [\"admin\", \"billing\"]", field.name);
  const auto* array = field.node.as_array();
  if (array != nullptr && array->empty()) {
    return ctx.fail_at(field.node.source(), usage);
  }
  return read_strings(ctx, field, usage);
}

std::string Roles::show(const std::vector<std::string>& roles) const {
  return fmt::format("{}", roles); // ["admin", "billing"]
}

Result<OverCap> CapPolicy::read(const Context& ctx, const Field& field) const {
  const auto* str = field.node.as_string();
  if (str == nullptr || (str->get() != "clamp" && str->get() != "reject")) {
    return ctx.fail_at(field.node.source(),
                       fmt::format("{} must be \"clamp\" (lower max_tokens to what the plan "
                                   "and today's quota allow) or \"reject\" (answer 400/429)",
                                   field.name));
  }
  return str->get() == "clamp" ? OverCap::clamp : OverCap::reject;
}

std::string CapPolicy::show(OverCap value) const {
  return value == OverCap::clamp ? "\"clamp\"" : "\"reject\"";
}

} // namespace claudegate::config::fields
