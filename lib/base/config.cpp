// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/config.hpp"

#include "config_fields.hpp"

#include "claudegate/base/duration.hpp"
#include "claudegate/base/fs.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <span>
#include <string_view>
#include <system_error>

namespace claudegate::config {

namespace {

using namespace fields;

constexpr std::size_t k_max_file_bytes = 1024 * 1024;
constexpr std::int64_t k_max_threads = 1024;

constexpr std::array<std::string_view, 9> k_root_keys{"issuer",         "audience",   "access_ttl",
                                                      "refresh_ttl",    "family_ttl", "leeway",
                                                      "max_access_ttl", "serve",      "plans"};
constexpr std::array<std::string_view, 10> k_serve_keys{
    "listen",  "upstream", "body_limit",  "read_timeout", "upstream_timeout",
    "threads", "jwks",     "jwks_issuer", "jwks_plan",    "max_output_tokens"};
constexpr std::array<std::string_view, 7> k_plan_keys{
    "daily_token_limit",      "models", "max_tokens", "rpm", "max_concurrent", "over_cap",
    "unbounded_input_reserve"};
constexpr std::int64_t k_max_output_tokens_ceiling = 10'000'000;

const std::vector<std::string> k_haiku_models{"claude-3-5-haiku*", "claude-haiku*", "claude-3-haiku*"};

Plan free_plan() {
  return Plan{"free", 50'000, k_haiku_models, 4096, 20, 2, OverCap::clamp, std::nullopt};
}

Plan pro_plan() {
  std::vector<std::string> models = k_haiku_models;
  models.emplace_back("claude-*sonnet*");
  return Plan{"pro", 500'000, std::move(models), 64'000, 120, 8, OverCap::clamp, std::nullopt};
}

Plan admin_plan() {
  return Plan{"admin",      std::nullopt, {"*"},          std::nullopt,
              std::nullopt, std::nullopt, OverCap::clamp, std::nullopt};
}

Result<void> apply_serve(const Context& ctx, const Field& field, ServeConfig& serve) {
  const auto table = table_of(ctx, field);
  if (!table) {
    return std::unexpected(table.error());
  }
  return each_key(**table, [&](const toml::key& key, const toml::node& node) -> Result<void> {
    const Field item{"serve." + std::string(key.str()), node};
    const std::string_view name = key.str();
    if (name == "listen") {
      return set_string(ctx, item, serve.listen);
    }
    if (name == "upstream") {
      return set_upstream(ctx, item, serve.upstream);
    }
    if (name == "body_limit") {
      return set_size(ctx, item, serve.body_limit);
    }
    if (name == "read_timeout") {
      return set_duration(ctx, item, 1, serve.read_timeout);
    }
    if (name == "upstream_timeout") {
      return set_duration(ctx, item, 1, serve.upstream_timeout);
    }
    if (name == "threads") {
      return set_integer(ctx, item, 0, k_max_threads, serve.threads);
    }
    if (name == "jwks") {
      return set_upstream(ctx, item, serve.jwks);
    }
    if (name == "jwks_issuer" || name == "jwks_plan") {
      return set_string(ctx, item, name == "jwks_issuer" ? serve.jwks_issuer : serve.jwks_plan);
    }
    if (name == "max_output_tokens") {
      return set_integer(ctx, item, 1, k_max_output_tokens_ceiling, serve.max_output_tokens);
    }
    return unknown_key(ctx, key, "serve", k_serve_keys);
  });
}

Result<void> apply_plan_key(const Context& ctx, const toml::key& key, const Field& item, Plan& plan) {
  const std::string_view name = key.str();
  if (name == "daily_token_limit") {
    return set_limit(ctx, item, 0, plan.daily_token_limit);
  }
  if (name == "models") {
    return set_globs(ctx, item, plan.models);
  }
  if (name == "max_tokens") {
    return set_limit(ctx, item, 1, plan.max_tokens);
  }
  if (name == "rpm") {
    return set_limit(ctx, item, 1, plan.rpm);
  }
  if (name == "max_concurrent") {
    return set_limit(ctx, item, 1, plan.max_concurrent);
  }
  if (name == "over_cap") {
    return set_over_cap(ctx, item, plan.over_cap);
  }
  if (name == "unbounded_input_reserve") {
    return set_limit(ctx, item, 1, plan.unbounded_input_reserve);
  }
  return unknown_key(ctx, key, "plans." + plan.name, k_plan_keys);
}

bool valid_plan_name(std::string_view name) {
  return !name.empty()
         && name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
                == std::string_view::npos;
}

// One [plans.NAME] table; a built-in plan keeps the keys the table does not set.
Result<void> apply_plan(const Context& ctx, const toml::key& key, const toml::node& node,
                        std::map<std::string, Plan>& plans) {
  const std::string name(key.str());
  if (!valid_plan_name(name)) {
    return ctx.fail_at(key.source(),
                       fmt::format("plan name \"{}\" may only use letters, digits, '_' and '-'", name));
  }
  const auto table = table_of(ctx, Field{"plans." + name, node});
  if (!table) {
    return std::unexpected(table.error());
  }
  const auto existing = plans.find(name);
  Plan plan = existing != plans.end() ? existing->second : Plan{name, {}, {}, {}, {}, {}, OverCap::clamp, {}};
  auto applied = each_key(**table, [&](const toml::key& item_key, const toml::node& item_node) {
    return apply_plan_key(ctx, item_key, Field{fmt::format("plans.{}.{}", name, item_key.str()), item_node},
                          plan);
  });
  if (!applied) {
    return applied;
  }
  if (plan.models.empty()) {
    return ctx.fail_at(
        key.source(),
        fmt::format("plan \"{}\" allows no models; add models = [\"claude-*haiku*\"] (globs)", name));
  }
  plans[name] = std::move(plan);
  return {};
}

Result<void> apply_plans(const Context& ctx, const Field& field, std::map<std::string, Plan>& plans) {
  const auto table = table_of(ctx, field);
  if (!table) {
    return std::unexpected(table.error());
  }
  return each_key(**table, [&](const toml::key& key, const toml::node& node) {
    return apply_plan(ctx, key, node, plans);
  });
}

Result<void> apply_root_key(const Context& ctx, const toml::key& key, const toml::node& node, Config& cfg) {
  const std::string_view name = key.str();
  const Field field{std::string(name), node};
  if (name == "issuer") {
    return set_string(ctx, field, cfg.issuer);
  }
  if (name == "audience") {
    return set_string(ctx, field, cfg.audience);
  }
  if (name == "access_ttl") {
    return set_duration(ctx, field, 1, cfg.access_ttl);
  }
  if (name == "refresh_ttl") {
    return set_duration(ctx, field, 1, cfg.refresh_ttl);
  }
  if (name == "family_ttl") {
    return set_duration(ctx, field, 1, cfg.family_ttl);
  }
  if (name == "leeway") {
    return set_duration(ctx, field, 0, cfg.leeway);
  }
  if (name == "max_access_ttl") {
    return set_duration(ctx, field, 1, cfg.max_access_ttl);
  }
  if (name == "serve") {
    return apply_serve(ctx, field, cfg.serve);
  }
  if (name == "plans") {
    return apply_plans(ctx, field, cfg.plans);
  }
  return unknown_key(ctx, key, "", k_root_keys);
}

// Settings that are each fine but together would make every plain `issue` fail.
Result<void> check_consistency(std::string_view source, const Config& cfg) {
  if (cfg.access_ttl > cfg.max_access_ttl) {
    return fail(Errc::config,
                fmt::format("{}: access_ttl ({}) is longer than max_access_ttl ({}); lower "
                            "access_ttl or raise max_access_ttl",
                            source, duration::format(cfg.access_ttl), duration::format(cfg.max_access_ttl)));
  }
  return {};
}

std::unexpected<Error> toml_error(std::string_view source, const toml::parse_error& error) {
  return fail(Errc::config,
              fmt::format("{}:{}:{}: invalid TOML ({}); fix the file", source, error.source().begin.line,
                          error.source().begin.column, error.description()));
}

// toml++ reports syntax errors by exception or by result, depending on how it was built.
Result<toml::table> parse_toml(std::string_view text, std::string_view source) {
#if TOML_EXCEPTIONS
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& error) {
    return toml_error(source, error);
  }
#else
  toml::parse_result parsed = toml::parse(text, source);
  if (!parsed) {
    return toml_error(source, parsed.error());
  }
  return std::move(parsed).table();
#endif
}

} // namespace

Result<const Plan*> Config::plan(const std::string& name) const {
  if (const auto found = plans.find(name); found != plans.end()) {
    return &found->second;
  }
  std::vector<std::string_view> names;
  for (const auto& entry : plans) {
    names.push_back(entry.first);
  }
  return fail(Errc::config, fmt::format("unknown plan \"{}\"; known plans: {} (define others as [plans.NAME] "
                                        "in claudegate.toml)",
                                        name, fmt::join(names, ", ")));
}

Config defaults() {
  Config cfg;
  for (Plan plan : {free_plan(), pro_plan(), admin_plan()}) {
    cfg.plans.emplace(plan.name, plan);
  }
  return cfg;
}

Result<Config> parse(std::string_view text, std::string_view source) {
  auto root = parse_toml(text, source);
  if (!root) {
    return std::unexpected(root.error());
  }
  Config cfg = defaults();
  const Context ctx{source};
  auto applied = each_key(*root, [&](const toml::key& key, const toml::node& node) {
    return apply_root_key(ctx, key, node, cfg);
  });
  if (!applied) {
    return std::unexpected(applied.error());
  }
  if (auto consistent = check_consistency(source, cfg); !consistent) {
    return std::unexpected(consistent.error());
  }
  return cfg;
}

Result<Config> load(const std::filesystem::path& path, Required required) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec) {
    if (required == Required::no) {
      return defaults();
    }
    return fail(Errc::config, fmt::format("config file {} not found; create it or point --config / "
                                          "CLAUDEGATE_CONFIG at an existing file",
                                          path.string()));
  }
  // Whoever can write the config can grant plans and models: a file owned by
  // another user or writable by group/others is refused. A link of one's own
  // is followed (dotfile managers), its target checked.
  auto text =
      fs::read_trusted(path, {"config file", fs::PathKind::file, fs::Links::follow_own}, k_max_file_bytes);
  if (!text) {
    return std::unexpected(text.error());
  }
  return parse(*text, path.string());
}

} // namespace claudegate::config
