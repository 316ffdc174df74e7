// SPDX-License-Identifier: Apache-2.0
// Read the shared RFC/Wycheproof vectors in place (never copied here).
#pragma once

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace claudegate::test {

inline std::filesystem::path vectors_dir() {
  return CLAUDEGATE_VECTORS_DIR;
}

// The vector file `relative` as JSON, or nullopt (with a SKIPPED message)
// when the shared folder is absent, as in a user's fresh clone.
inline std::optional<nlohmann::json> load_vectors(const std::string& relative) {
  const auto path = vectors_dir() / relative;
  std::ifstream in(path);
  if (!in) {
    MESSAGE("SKIPPED: vectors not found at " << path.string() << " (set CLAUDEGATE_VECTORS_DIR)");
    return std::nullopt;
  }
  return nlohmann::json::parse(in);
}

} // namespace claudegate::test
