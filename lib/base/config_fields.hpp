// SPDX-License-Identifier: Apache-2.0
#pragma once

// Reading one value of claudegate.toml into the configuration: each setter
// checks the value's type and range and fails with config naming the file,
// the line and the dotted key (private to lib/base, used by config.cpp).

#include "claudegate/base/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace claudegate::config::fields {

// A value in the file: its dotted name for messages and its node.
struct Field {
  std::string name;
  const toml::node& node;
};

// The file name every message starts with, as "claudegate.toml:12: …".
struct Context {
  std::string_view source;

  std::unexpected<Error> fail_at(const toml::source_region& where, std::string message) const {
    return fail(Errc::config, fmt::format("{}:{}: {}", source, where.begin.line, message));
  }
};

// Loop over `table`, applying each key with `apply`.
template <typename Apply> Result<void> each_key(const toml::table& table, Apply&& apply) {
  for (auto&& [key, node] : table) {
    if (auto done = apply(key, node); !done) {
      return done;
    }
  }
  return {};
}

std::unexpected<Error> unknown_key(const Context& ctx, const toml::key& key, std::string_view table,
                                   std::span<const std::string_view> known);

Result<void> set_string(const Context& ctx, const Field& field, std::string& out);

// A duration as "15m" or whole seconds, at least `min` seconds.
Result<void> set_duration(const Context& ctx, const Field& field, std::int64_t min, std::int64_t& out);

Result<void> set_integer(const Context& ctx, const Field& field, std::int64_t min, std::int64_t max,
                         std::int64_t& out);

// A plan limit: a whole number of at least `min`, or "unlimited".
Result<void> set_limit(const Context& ctx, const Field& field, std::int64_t min,
                       std::optional<std::int64_t>& out);

Result<void> set_size(const Context& ctx, const Field& field, std::int64_t& out);

Result<void> set_upstream(const Context& ctx, const Field& field, std::string& out);

Result<void> set_globs(const Context& ctx, const Field& field, std::vector<std::string>& out);

Result<const toml::table*> table_of(const Context& ctx, const Field& field);

Result<void> set_over_cap(const Context& ctx, const Field& field, OverCap& out);

} // namespace claudegate::config::fields
