#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test command: install the test dependencies, build the ci preset (warnings
# as errors), run every unit, CLI and interop test through ctest. Cases that
# need the shared vectors (../shared/vectors) are skipped without them, and
# fail when CI is set.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/test_postgres.sh
scripts/install-deps.sh test
PRESET=ci scripts/build.sh "$@"
start_test_postgres
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
