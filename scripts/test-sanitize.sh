#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite again under AddressSanitizer + UndefinedBehaviorSanitizer
# (with LeakSanitizer), in its own build folder ${BUILD_DIR:-build-asan} (preset asan).
# -O0 -g1 (line tables only): instrumenting unoptimised code compiles in
# about half the time of -O1, which keeps this pass inside CI's budget, and
# stacks keep file:line; benchmarks are left out. Every sanitizer report fails the test that triggered it: the
# run halts on the first error with exit code 86, which no test expects.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/test_postgres.sh
scripts/install-deps.sh test
build_dir=${BUILD_DIR:-build-asan}
BUILD_DIR=$build_dir PRESET=asan scripts/build.sh "$@" # CMakePresets.json "asan"
export ASAN_OPTIONS="halt_on_error=1:exitcode=86:detect_leaks=1:abort_on_error=0:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:exitcode=86:print_stacktrace=1"
start_test_postgres
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"
