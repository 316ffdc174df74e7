#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install the build dependencies, configure with a preset of CMakePresets.json
# (${PRESET:-ci}: what CI builds, -O2 -g1 with warnings as errors) and build,
# into the preset's folder or ${BUILD_DIR} when set. Extra arguments go to the
# CMake configure step. Without the script: cmake --preset ci && cmake --build --preset ci
# (-g1, line tables only: backtraces keep file:line, and the build is about a
# third faster than with full debug info.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
preset=${PRESET:-ci}
case $preset in
  ci) default_dir=build ;;
  *) default_dir=build-$preset ;; # as "binaryDir" in CMakePresets.json
esac
build_dir=${BUILD_DIR:-$default_dir}
cmake --preset "$preset" -B "$build_dir" "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
