#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build in release mode and run the benchmarks; each prints ratios against a
# reference measured in the same run. Arguments go to bench_jose (seconds per
# round, rounds). The usage-report part seeds a 1 000 000-row ledger first
# (tens of seconds). The serve-local parts need nginx and wrk: bench/proxy/run.sh
# (about 80 s) and bench/proxy/streams.sh (1 000 long streams, about 70 s); run
# them alone for other durations, connection or stream counts.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-release}
BUILD_DIR=$BUILD_DIR scripts/build.sh -DCMAKE_BUILD_TYPE=Release -DCLAUDEGATE_BUILD_TESTS=OFF | tail -n 3
echo "machine: $(nproc) cores, $(uname -m), $(openssl version)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
"$BUILD_DIR/bench/bench_jose" "$@"

# usage-report over one 1 000 000-row ledger in a scratch folder: Store::usage
# and report::render next to a plain SELECT … GROUP BY (bench_report), then the
# command end to end (process start, store open, query, render to /dev/null),
# best of 5 runs in milliseconds.
ledger=$(mktemp -d)
trap 'rm -rf "$ledger"' EXIT
"$BUILD_DIR/bench/bench_report" --seed-direct "$ledger/claudegate.db" 1000000
"$BUILD_DIR/bench/bench_report" --ledger "$ledger/claudegate.db"
best_ms() {
  local best=999999 start end
  for _ in 1 2 3 4 5; do
    start=$(date +%s%N)
    "$@" >/dev/null
    end=$(date +%s%N)
    best=$(( (end - start) / 1000000 < best ? (end - start) / 1000000 : best ))
  done
  echo "$best"
}
export CLAUDEGATE_HOME=$ledger/home # not the user's home
now=$(date +%s)
echo
for range in "" "--since $((now - 30 * 86400)) --until $now"; do
  for by in "" "--by sub" "--by day" "--by sub,day,model" "--by sub,day,model --format json"; do
    # shellcheck disable=SC2086 # word splitting of the flag lists is intended
    ms=$(best_ms "$BUILD_DIR/apps/claudegate/claudegate" --db "$ledger/claudegate.db" usage-report $range $by)
    printf 'claudegate usage-report %-40s %-32s %5s ms\n' "${range:-(today)}" "$by" "$ms"
  done
done

# serve-local under wrk load next to nginx proxy_pass to the same trivial
# upstream (issue #7 target 4), then 1 000 concurrent long streams (target 5),
# with the scripts' defaults.
echo
BUILD_DIR=$BUILD_DIR bench/proxy/run.sh
BUILD_DIR=$BUILD_DIR bench/proxy/streams.sh
