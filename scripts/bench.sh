#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build in release mode and run the benchmarks; each prints ratios against a
# reference measured in the same run. Arguments go to bench_jose (seconds per
# round, rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-release}
BUILD_DIR=$BUILD_DIR scripts/build.sh -DCMAKE_BUILD_TYPE=Release -DCLAUDEGATE_BUILD_TESTS=OFF | tail -n 3
echo "machine: $(nproc) cores, $(uname -m), $(openssl version)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
"$BUILD_DIR/bench/bench_jose" "$@"
