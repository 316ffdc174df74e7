// SPDX-License-Identifier: Apache-2.0
#pragma once

// The keys of claudegate.toml as tables of entries (private to lib/base,
// used by config.cpp). An entry names a key, says how to read its value
// (a kind below) into which member, and documents it; one table per TOML
// table drives parsing, the "did you mean" list and key_docs().

#include "claudegate/base/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
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

// Kinds of value: `read` checks the node's type and range and fails with
// config naming the file, the line and the dotted key; `show` writes a
// value as the file would (empty: none); `type` names the kind in key_docs().

struct Text {
  static constexpr std::string_view type = "string";
  Result<std::string> read(const Context& ctx, const Field& field) const;
  std::string show(const std::string& value) const;
};

// An http:// or https:// URL.
struct Url {
  static constexpr std::string_view type = "url";
  Result<std::string> read(const Context& ctx, const Field& field) const;
  std::string show(const std::string& value) const;
};

// "15m" or whole seconds, at least `min` seconds.
struct Duration {
  static constexpr std::string_view type = "duration";
  std::int64_t min;
  Result<std::int64_t> read(const Context& ctx, const Field& field) const;
  std::string show(std::int64_t seconds) const;
};

struct Integer {
  static constexpr std::string_view type = "integer";
  std::int64_t min;
  std::int64_t max;
  Result<std::int64_t> read(const Context& ctx, const Field& field) const;
  std::string show(std::int64_t value) const;
};

// A plan limit: a whole number of at least `min`, or "unlimited" (nullopt).
struct Limit {
  static constexpr std::string_view type = "limit";
  std::int64_t min;
  Result<std::optional<std::int64_t>> read(const Context& ctx, const Field& field) const;
  std::string show(const std::optional<std::int64_t>& value) const;
};

// Bytes: 33554432 or "32MiB".
struct Size {
  static constexpr std::string_view type = "size";
  Result<std::int64_t> read(const Context& ctx, const Field& field) const;
  std::string show(std::int64_t bytes) const;
};

// A list of model globs.
struct Globs {
  static constexpr std::string_view type = "globs";
  Result<std::vector<std::string>> read(const Context& ctx, const Field& field) const;
  std::string show(const std::vector<std::string>& globs) const;
};

// A non-empty list of role names.
struct Roles {
  static constexpr std::string_view type = "roles";
  Result<std::vector<std::string>> read(const Context& ctx, const Field& field) const;
  std::string show(const std::vector<std::string>& roles) const;
};

// "clamp" or "reject".
struct CapPolicy {
  static constexpr std::string_view type = "clamp|reject";
  Result<OverCap> read(const Context& ctx, const Field& field) const;
  std::string show(OverCap value) const;
};

// One key of a table whose values land in a `Target` (Config, ServeConfig,
// Plan): `set` reads the value and sets its member of the target being built.
template <typename Target> struct Entry {
  std::string_view key;
  std::string_view type;
  std::string_view doc;
  std::function<Result<void>(const Context&, const Field&, Target&)> set;
  std::function<std::string(const Target&)> show;
};

// The entry for `key`, read as `kind` into `target.*member`.
template <typename Target, typename Value, typename Kind>
Entry<Target> entry(std::string_view key, Value Target::*member, Kind kind, std::string_view doc) {
  return {key, Kind::type, doc,
          [member, kind](const Context& ctx, const Field& field, Target& target) -> Result<void> {
            auto value = kind.read(ctx, field);
            if (!value) {
              return propagate(value);
            }
            target.*member = std::move(*value);
            return {};
          },
          [member, kind](const Target& target) { return kind.show(target.*member); }};
}

std::unexpected<Error> unknown_key(const Context& ctx, const toml::key& key, std::string_view table,
                                   std::span<const std::string_view> known);

Result<const toml::table*> table_of(const Context& ctx, const Field& field);

// "serve.listen" for key "listen" of table "serve"; "issuer" at the top level ("").
std::string dotted(std::string_view table, std::string_view key);

template <typename Target>
std::vector<std::string_view> known_keys(const std::vector<Entry<Target>>& entries) {
  std::vector<std::string_view> keys;
  for (const auto& e : entries) {
    keys.push_back(e.key);
  }
  return keys;
}

// `target` with every key of `table` (named `name` in messages, "" at the
// top level) applied through `entries`; a key no entry names is an unknown_key.
template <typename Target>
Result<Target> apply_table(const Context& ctx, const toml::table& table, std::string_view name,
                           const std::vector<Entry<Target>>& entries, Target target) {
  for (auto&& [key, node] : table) {
    const auto found =
        std::find_if(entries.begin(), entries.end(), [&key](const auto& e) { return e.key == key.str(); });
    if (found == entries.end()) {
      return unknown_key(ctx, key, name, known_keys(entries));
    }
    if (auto applied = found->set(ctx, Field{dotted(name, key.str()), node}, target); !applied) {
      return propagate(applied);
    }
  }
  return target;
}

// The documentation of `entries` for key_docs(), names prefixed by `prefix`
// ("serve.", "plans.NAME."), defaults shown from `defaults`.
template <typename Target>
void append_docs(std::vector<KeyDoc>& docs, std::string_view prefix,
                 const std::vector<Entry<Target>>& entries, const Target& defaults) {
  for (const auto& e : entries) {
    docs.push_back({fmt::format("{}{}", prefix, e.key), e.type, e.show(defaults), e.doc});
  }
}

} // namespace claudegate::config::fields
