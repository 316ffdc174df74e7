#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test command: install dependencies, build with warnings as errors, run
# every unit, CLI and interop test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh "$@"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
