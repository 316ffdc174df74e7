// SPDX-License-Identifier: Apache-2.0
#include "cmd_complete.hpp"

#include "context.hpp"

#include <claudegate/base/config.hpp>
#include <claudegate/base/text.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <memory>
#include <set>
#include <string_view>

namespace claudegate::app {

namespace {

// What the shell should offer for the word under the cursor.
enum class Directive { values, files, dirs };

struct Candidate {
  std::string value;
  std::string help;
};

struct Completion {
  Directive directive = Directive::values;
  std::vector<Candidate> candidates;
};

// Where the words before the cursor leave the command line.
struct CommandLine {
  const CLI::App* command = nullptr;    // the deepest subcommand named so far
  const CLI::Option* pending = nullptr; // the option whose value is under the cursor
  std::string current;                  // the word under the cursor
  std::string prefix;                   // "--opt=" when the word carries its option
};

enum class Lookup { none, plans, subjects, models };

// Option values the CLI11 definition cannot list: paths, and names known
// only to the config or the store.
struct ValueSource {
  std::string_view option;
  Directive directive;
  Lookup lookup;
};

constexpr std::array<ValueSource, 11> k_value_sources{{
    {"--home", Directive::dirs, Lookup::none},
    {"--db", Directive::files, Lookup::none},
    {"--config", Directive::files, Lookup::none},
    {"--import", Directive::files, Lookup::none},
    {"--jwks", Directive::files, Lookup::none},
    {"--out", Directive::files, Lookup::none},
    {"--api-key-file", Directive::files, Lookup::none},
    {"--log", Directive::files, Lookup::none},
    {"--plan", Directive::values, Lookup::plans},
    {"--sub", Directive::values, Lookup::subjects},
    {"--model", Directive::values, Lookup::models},
}};

// A subcommand with an empty group (like this one) is hidden from help and completion.
bool visible(const CLI::App* command) {
  return !command->get_group().empty();
}

bool visible(const CLI::Option* option) {
  return !option->get_group().empty() && !option->get_lnames().empty();
}

// The option `name` on `command` or, as fallthrough allows, on one of its parents.
const CLI::Option* find_option(const CLI::App* command, const std::string& name) {
  for (; command != nullptr; command = command->get_parent()) {
    if (const auto* option = command->get_option_no_throw(name)) {
      return option;
    }
  }
  return nullptr;
}

// Flags expect no value (CLI11 gives them expected(0)); every other option one.
bool takes_value(const CLI::Option* option) {
  return option != nullptr && option->get_items_expected_max() > 0;
}

const CLI::App* find_subcommand(const CLI::App* command, const std::string& name) {
  const auto found = command->get_subcommands(
      [&name](const CLI::App* sub) { return visible(sub) && sub->get_name() == name; });
  return found.empty() ? nullptr : found.front();
}

// Advance over one word before the cursor. A lone "=" after an option is
// bash splitting "--opt=value" at COMP_WORDBREAKS: the value still follows.
void step(CommandLine& line, const std::string& word) {
  if (line.pending != nullptr) {
    if (word != "=") {
      line.pending = nullptr;
    }
    return;
  }
  if (word.starts_with("-")) {
    const auto* option = word.find('=') == std::string::npos ? find_option(line.command, word) : nullptr;
    line.pending = takes_value(option) ? option : nullptr;
    return;
  }
  if (const auto* sub = find_subcommand(line.command, word)) {
    line.command = sub;
  }
}

// The word under the cursor, split when it is "--opt=value".
void take_current(CommandLine& line, const std::string& word) {
  line.current = word;
  if (line.pending != nullptr) {
    if (word == "=") {
      line.current.clear();
    }
    return;
  }
  const auto eq = word.find('=');
  if (word.starts_with("--") && eq != std::string::npos) {
    const auto* option = find_option(line.command, word.substr(0, eq));
    if (takes_value(option)) {
      line.pending = option;
      line.prefix = word.substr(0, eq + 1);
      line.current = word.substr(eq + 1);
    }
  }
}

CommandLine locate(const CLI::App& root, const std::vector<std::string>& words) {
  CommandLine line;
  line.command = &root;
  for (std::size_t i = 0; i + 1 < words.size(); ++i) {
    step(line, words[i]);
  }
  take_current(line, words.empty() ? std::string{} : words.back());
  return line;
}

std::vector<std::string> split(std::string_view list, char separator) {
  const auto items = text::split(list, separator);
  return {items.begin(), items.end()};
}

// A validator's description as a list of values: "{a,b}" (CLI::IsMember) or "a|b[,…]".
std::vector<std::string> listed_values(std::string_view description) {
  if (description.size() > 2 && description.front() == '{' && description.back() == '}') {
    return split(description.substr(1, description.size() - 2), ',');
  }
  const auto end =
      description.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-|");
  const auto names = description.substr(0, end);
  if (names.find('|') == std::string_view::npos) {
    return {};
  }
  return split(names, '|');
}

// What the option's validators say: "TEXT:{a,b}", "TEXT:a|b|c" or "TEXT:FILE".
Completion from_validators(const CLI::Option& option) {
  Completion completion;
  const auto segments = split(option.get_type_name(), ':');
  for (std::size_t i = 1; i < segments.size(); ++i) {
    if (segments[i] == "FILE" || segments[i] == "PATH(existing)") {
      completion.directive = Directive::files;
    } else if (segments[i] == "DIR") {
      completion.directive = Directive::dirs;
    }
    for (auto& value : listed_values(segments[i])) {
      completion.candidates.push_back({std::move(value), {}});
    }
  }
  return completion;
}

std::vector<std::string> plan_names(Context& ctx) {
  std::vector<std::string> names;
  if (auto cfg = ctx.config()) {
    for (const auto& entry : (*cfg)->plans) {
      names.push_back(entry.first);
    }
  }
  return names;
}

// Subjects or models seen in the usage ledger; never creates a SQLite file
// to find none (a PostgreSQL store is asked: its database exists already).
std::vector<std::string> ledger_names(Context& ctx, store::GroupBy by) {
  const auto location = ctx.store_location();
  std::error_code ec;
  if (!location
      || (location->backend == store::StoreLocation::Backend::sqlite
          && !std::filesystem::exists(location->path, ec))) {
    return {};
  }
  auto store = ctx.store();
  store::UsageQuery query;
  query.group_by = {by};
  auto rows = store ? (*store)->usage(query) : propagate(store);
  std::vector<std::string> names;
  for (const auto& row : rows ? *rows : std::vector<store::UsageRow>{}) {
    names.push_back(by == store::GroupBy::sub ? row.subject : row.model);
  }
  return names;
}

std::vector<std::string> looked_up(Lookup lookup, Context& ctx) {
  switch (lookup) {
  case Lookup::plans:
    return plan_names(ctx);
  case Lookup::subjects:
    return ledger_names(ctx, store::GroupBy::sub);
  case Lookup::models:
    return ledger_names(ctx, store::GroupBy::model);
  case Lookup::none:
    break;
  }
  return {};
}

Completion value_candidates(const CLI::Option& option, Context& ctx) {
  auto completion = from_validators(option);
  const auto source = std::find_if(k_value_sources.begin(), k_value_sources.end(),
                                   [&](const ValueSource& s) { return s.option == option.get_name(); });
  if (!completion.candidates.empty() || source == k_value_sources.end()) {
    return completion;
  }
  completion.directive = source->directive;
  for (auto& name : looked_up(source->lookup, ctx)) {
    completion.candidates.push_back({std::move(name), {}});
  }
  return completion;
}

// The long options of `command` and of its parents (global options fall through).
Completion option_candidates(const CLI::App* command) {
  Completion completion;
  std::set<std::string> seen;
  for (; command != nullptr; command = command->get_parent()) {
    for (const auto* option : command->get_options()) {
      if (visible(option) && seen.insert(option->get_name()).second) {
        completion.candidates.push_back({option->get_name(), option->get_description()});
      }
    }
  }
  return completion;
}

Completion subcommand_candidates(const CLI::App& command) {
  Completion completion;
  for (const auto* sub : command.get_subcommands([](const CLI::App* s) { return visible(s); })) {
    completion.candidates.push_back({sub->get_name(), sub->get_description()});
  }
  return completion;
}

// Options are offered on an empty word too when no positional argument is
// expected there (a subcommand without one).
bool wants_options(const CommandLine& line) {
  if (line.current.starts_with("-")) {
    return true;
  }
  const bool takes_positionals =
      !line.command->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
  return line.current.empty() && line.command->get_parent() != nullptr && !takes_positionals;
}

Completion complete(const CommandLine& line, Context& ctx) {
  if (line.pending != nullptr) {
    return value_candidates(*line.pending, ctx);
  }
  if (wants_options(line)) {
    return option_candidates(line.command);
  }
  return subcommand_candidates(*line.command);
}

std::string_view directive_name(Directive directive) {
  switch (directive) {
  case Directive::files:
    return ":files";
  case Directive::dirs:
    return ":dirs";
  case Directive::values:
    break;
  }
  return ":values";
}

void print_completion(const Completion& completion, const CommandLine& line) {
  fmt::print("{}\n", directive_name(completion.directive));
  for (const auto& candidate : completion.candidates) {
    if (candidate.value.starts_with(line.current)) {
      fmt::print("{}{}\t{}\n", line.prefix, candidate.value, candidate.help);
    }
  }
}

// The home the completed command would use: its own --home/--db/--config
// words, else the environment, parsed by the same global option definitions.
void apply_global_words(Context& ctx, const std::vector<std::string>& words) {
  CLI::App globals;
  ctx.setup_global_options(globals);
  globals.allow_extras();
  std::vector<std::string> reversed(words.rbegin(), words.rend());
  if (!reversed.empty()) {
    reversed.erase(reversed.begin()); // the word under the cursor is not given yet
  }
  try {
    globals.parse(reversed);
  } catch (const CLI::ParseError&) {
    // An unfinished command line: complete against the environment's home.
  }
}

// One line per claudegate.toml key: NAME<TAB>TYPE<TAB>DEFAULT<TAB>DOC.
void print_config_keys() {
  for (const auto& key : config::key_docs()) {
    fmt::print("{}\t{}\t{}\t{}\n", key.name, key.type, key.fallback, key.doc);
  }
}

} // namespace

void setup_complete(CLI::App& app) {
  auto words = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand("__complete", "print shell completion candidates (for completions/)");
  cmd->group("");
  cmd->add_option("words", *words, "the command line after 'claudegate', cursor word last");
  cmd->callback([words, &app] {
    Context ctx;
    apply_global_words(ctx, *words);
    const auto line = locate(app, *words);
    print_completion(complete(line, ctx), line);
  });
  auto* keys = app.add_subcommand("__config-keys", "print the claudegate.toml keys (for tests/docs)");
  keys->group("");
  keys->callback(print_config_keys);
}

} // namespace claudegate::app
