// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "context.hpp"

#include <claudegate/jose/token.hpp>

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

// `issue --api-key`: mint an API key for a grant, or rotate one.
namespace claudegate::app {

struct ApiKeyOptions {
  bool enabled = false;              // --api-key
  std::optional<std::string> name;   // --name
  std::optional<std::string> rotate; // --rotate ID
  std::string overlap = "24h";       // --overlap DUR
};

// The default lifetime of an API key (--ttl overrides it; max_access_ttl does not apply).
inline constexpr std::int64_t k_api_key_ttl = 90 * 86'400;

// Declare --api-key, --name, --rotate and --overlap on `issue` (`cmd`),
// after its other options: --rotate takes none of the grant's options.
void setup_api_key_options(CLI::App& cmd, ApiKeyOptions& opt);

// Mint a key for `request` (its ttl is what a token minted from the key
// lives), valid `ttl` seconds, and print it once.
ExitCode mint_api_key(const ApiKeyOptions& opt, const token::AccessTokenRequest& request, std::int64_t ttl,
                      OutputFormat format, Context& ctx);

// Mint a key with the grant of key `opt.rotate`, which keeps working for
// `opt.overlap`; `ttl` (default: the old key's lifetime) for the new one.
ExitCode rotate_api_key(const ApiKeyOptions& opt, std::optional<std::int64_t> ttl, OutputFormat format,
                        Context& ctx);

} // namespace claudegate::app
