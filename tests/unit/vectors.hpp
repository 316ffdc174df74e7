// SPDX-License-Identifier: Apache-2.0
// Read the shared RFC/Wycheproof vectors in place (never copied here).
//
// A user's fresh clone has no vectors folder: only the cases that need it
// skip, never a whole file. Such cases belong to the doctest suite "vectors"
// (`TEST_CASE("…" * doctest::test_suite("vectors"))`, or a whole file between
// TEST_SUITE_BEGIN("vectors") and TEST_SUITE_END()); tests/CMakeLists.txt runs
// them as their own ctest entry, unit.test_<module>.vectors, which ctest marks
// Skipped when they print "SKIPPED:". With CI set, a missing folder fails them.
#pragma once

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace claudegate::test {

// $CLAUDEGATE_VECTORS_DIR when set, else the folder the build was configured with.
inline std::filesystem::path vectors_dir() {
  const char* from_env = std::getenv("CLAUDEGATE_VECTORS_DIR");
  return from_env != nullptr && *from_env != '\0' ? std::filesystem::path(from_env)
                                                  : std::filesystem::path(CLAUDEGATE_VECTORS_DIR);
}

// CI always has the vectors: there a missing folder is a failure, not a skip.
inline bool vectors_required() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0';
}

// Report that `path` is missing: a failure under CI, else a SKIPPED message.
inline void report_missing_vectors(const std::filesystem::path& path) {
  if (vectors_required()) {
    FAIL_CHECK("vectors not found at "
               << path.string() << " and CI is set, where they are required (set CLAUDEGATE_VECTORS_DIR)");
  } else {
    MESSAGE("SKIPPED: vectors not found at " << path.string() << " (set CLAUDEGATE_VECTORS_DIR)");
  }
}

// The path of vector file or folder `relative`, or nullopt (reported as
// above) when it is absent.
inline std::optional<std::filesystem::path> vectors_path(const std::string& relative) {
  auto path = vectors_dir() / relative;
  if (!std::filesystem::exists(path)) {
    report_missing_vectors(path);
    return std::nullopt;
  }
  return path;
}

// The vector file `relative` as JSON, or nullopt (reported as above) when absent.
inline std::optional<nlohmann::json> load_vectors(const std::string& relative) {
  const auto path = vectors_path(relative);
  if (!path) {
    return std::nullopt;
  }
  std::ifstream in(*path);
  REQUIRE_MESSAGE(in, "cannot read " << path->string());
  return nlohmann::json::parse(in);
}

} // namespace claudegate::test
