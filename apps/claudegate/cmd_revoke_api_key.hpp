// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "context.hpp"

#include <claudegate/store/api_keys.hpp>

#include <string>
#include <vector>

// The API-key parts of `revoke`: --api-key ID, and the keys in --list.
namespace claudegate::app {

// Revoke key `id` for `reason`, audit it and say so. Exit 3 when the id is unknown.
ExitCode revoke_api_key(const std::string& id, const std::string& reason, OutputFormat format, Context& ctx,
                        store::Store& store);

// `keys` as --list --json shows them at `now` (never a secret or hash).
json::Json api_keys_json(const std::vector<store::ApiKeyRecord>& keys, UnixSeconds now);

// `keys` as a table after the revocations (nothing when there are none).
void print_api_keys(const std::vector<store::ApiKeyRecord>& keys, UnixSeconds now);

} // namespace claudegate::app
