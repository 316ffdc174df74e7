// SPDX-License-Identifier: Apache-2.0
#include "cmd_inspect.hpp"

#include "options.hpp"

#include <claudegate/base/duration.hpp>
#include <claudegate/jose/base64url.hpp>

#include <fmt/core.h>

#include <memory>

namespace claudegate::app {

namespace {

struct InspectOptions {
  std::string token;
  OutputFormat format = OutputFormat::text;
};

// One dot-separated segment decoded as JSON, or a note saying why it is not.
json::Json decode_segment(std::string_view segment) {
  auto bytes = base64url::decode(segment);
  if (!bytes) {
    return {{"undecodable", bytes.error().message}};
  }
  auto value = json::parse_value(*bytes, {.max_bytes = 64 * 1024, .max_depth = 64});
  if (!value) {
    return {{"not_json", value.error().message}};
  }
  return *value;
}

// Human times next to the numeric ones, so "exp" reads at a glance.
void annotate_times(json::Json& claims) {
  for (const char* name : {"exp", "nbf", "iat"}) {
    if (claims.is_object() && claims.contains(name) && claims[name].is_number()) {
      const auto t = static_cast<UnixSeconds>(claims[name].get<double>());
      claims[std::string(name) + "_time"] = duration::format_time(t);
    }
  }
}

json::Json inspect_token(std::string_view token) {
  std::vector<std::string_view> segments;
  for (std::size_t start = 0;;) {
    const auto dot = token.find('.', start);
    segments.push_back(token.substr(start, dot - start));
    if (dot == std::string_view::npos) {
      break;
    }
    start = dot + 1;
  }
  json::Json out = {{"segments", segments.size()}};
  out["header"] = decode_segment(segments[0]);
  if (segments.size() > 1) {
    out["claims"] = decode_segment(segments[1]);
    annotate_times(out["claims"]);
  }
  if (segments.size() > 2) {
    auto signature = base64url::decode(segments[2]);
    out["signature_bytes"] = signature ? json::Json(signature->size()) : json::Json(nullptr);
  }
  return out;
}

ExitCode run_inspect(const InspectOptions& opt, Context& ctx) {
  auto token = token_argument(opt.token);
  if (!token) {
    return ctx.report(token.error(), opt.format);
  }
  fmt::print(stderr, "claudegate: note: decoded WITHOUT verification; use 'claudegate verify' to check it\n");
  print_json(inspect_token(*token), opt.format);
  return ExitCode::success;
}

} // namespace

void setup_inspect(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<InspectOptions>();
  auto* cmd =
      app.add_subcommand("inspect", "Decode a token's header and claims WITHOUT verifying (debugging)");
  cmd->add_option("token", opt->token, "the token, or - to read it from stdin");
  add_json_flag(*cmd, opt->format);
  cmd->callback([opt, &ctx] { ctx.set_exit(run_inspect(*opt, ctx)); });
}

} // namespace claudegate::app
