#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install dependencies, configure and build into ${BUILD_DIR:-build}.
# Extra arguments go to the CMake configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build_dir=${BUILD_DIR:-build}
# -g1 (line tables only): backtraces keep file:line, and the build is about a
# third faster than with full debug info.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCLAUDEGATE_WARNINGS_AS_ERRORS=ON "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
