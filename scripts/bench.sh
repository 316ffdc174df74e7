#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The one entry point for the performance benchmarks: builds in release mode, runs
# every target's benchmark (each measures its reference in the same run), tees
# everything to a log and writes docs/PERFORMANCE.md: the machine, the command,
# the date, one table with a row per target (bench/summarize.py, from the
# benchmarks' RESULT lines) and then the benchmarks' own tables. About 10
# minutes on 2 cores, 3 of them the proxy pieces (run.sh, streams.sh,
# idle.sh), 1 the replicas on PostgreSQL (bench/replicas/run.sh). A
# benchmark that fails marks its rows "failed"; the file is still
# written and the script exits 1. Each piece's output and the log stay in
# $BUILD_DIR/bench-results/.
#
# Usage: scripts/bench.sh [SECONDS ROUNDS]   (bench_jose's seconds per round and rounds; default 0.3 3)
# Env: BUILD_DIR (default build-release), BENCH_OUT (default docs/PERFORMANCE.md),
#   PROXY_SECONDS (default 8 per wrk line, run.sh and idle.sh), PROXY_CONNS (default 32,64),
#   STREAMS (default 9000, 20 events 1 s apart, serve-local's default settings), IDLE (idle
#   connections held, default 10000), BATCH_TOKENS (default 100000), STORE_ROWS (ledger and deny-list rows, default 1000000); smaller
#   values make a quick check of the script, not figures for the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="scripts/bench.sh${*:+ $*}"
started=$(date +%s)
start_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
start_load=$(cut -d' ' -f1-3 /proc/loadavg)
BUILD_DIR=${BUILD_DIR:-build-release}
out_file=${BENCH_OUT:-docs/PERFORMANCE.md}
results=$BUILD_DIR/bench-results # each piece's output, the log, and summarize.sh
log=$results/bench.log
jose_seconds=${1:-0.3}
jose_rounds=${2:-3}
store_rows=${STORE_ROWS:-1000000}
scripts/install-deps.sh bench
BUILD_DIR=$BUILD_DIR PRESET=release scripts/build.sh | tail -n 3 # Release, no tests (CMakePresets.json)
CG=$PWD/$BUILD_DIR/apps/claudegate/claudegate
bin=$PWD/$BUILD_DIR/bench

work=$(mktemp -d) # scratch homes and ledgers
trap 'rm -rf "$work"' EXIT
rm -rf "$results"
mkdir -p "$results"
: >"$log"
pieces=()
status=0
# Run piece $1 (its tables are $2: md or text) as "$@", output to the terminal,
# the log and $results/$1.txt; a failure is recorded, not fatal.
piece() {
  local name=$1 kind=$2 code=0
  shift 2
  echo "== $name: $*" | tee -a "$log"
  "$@" 2>&1 | tee "$results/$name.txt" | tee -a "$log" || code=$?
  [ "$code" = 0 ] || status=1
  pieces+=("$name:$kind:$code:$results/$name.txt")
}

# A scratch home with a fresh RS256 key (CLAUDEGATE_HOME never points at the user's own).
fresh_home() {
  local home=$work/$1
  "$CG" --home "$home" keygen >/dev/null
  echo "$home"
}

# Best wall time in ms of 5 runs of "$@".
# shellcheck disable=SC2317 # reached through piece
best_ms() {
  local best=999999 start end
  for _ in 1 2 3 4 5; do
    start=$(date +%s%N)
    "$@" >/dev/null
    end=$(date +%s%N)
    best=$(((end - start) / 1000000 < best ? (end - start) / 1000000 : best))
  done
  echo "$best"
}

# usage-report over one $store_rows-row ledger: Store::usage and report::render
# next to a plain SELECT … GROUP BY (bench_report), then the command end to
# end (process start, store open, query, render to /dev/null) for each listed
# form, best of 5 runs; the worst form is target 6's figure.
# shellcheck disable=SC2317 # reached through piece
usage_report() {
  local ledger=$work/ledger now worst=0 worst_form="" range by ms
  mkdir -p "$ledger"
  "$bin/bench_report" --seed-direct "$ledger/claudegate.db" "$store_rows" || return 1
  "$bin/bench_report" --ledger "$ledger/claudegate.db" || return 1
  now=$(date +%s)
  echo
  for range in "" "--since $((now - 30 * 86400)) --until $now"; do
    for by in "" "--by sub" "--by day" "--by sub,day,model" "--by sub,day,model --format json"; do
      # shellcheck disable=SC2086 # word splitting of the flag lists is intended
      ms=$(best_ms "$CG" --home "$ledger/home" --db "$ledger/claudegate.db" usage-report $range $by) || return 1
      printf 'claudegate usage-report %-40s %-32s %5s ms\n' "${range:-(today)}" "$by" "$ms"
      if ((ms > worst)); then
        worst=$ms
        worst_form="usage-report ${range:+--since/--until 30 days }$by"
      fi
    done
  done
  echo "RESULT store.report $worst ms \"worst: ${worst_form% }, $store_rows rows (best of 5)\" \"-\""
}

piece bench_jose md "$bin/bench_jose" "$jose_seconds" "$jose_rounds"
piece batch md "$bin/bench_cli" batch "$CG" "$(fresh_home batch)" "${BATCH_TOKENS:-100000}" 2
piece cold_start md "$bin/bench_cli" cold-start "$CG" "$(fresh_home cold)" 20
piece usage_report text usage_report
piece prune md "$bin/bench_cli" prune "$CG" "$(fresh_home prune)" "$store_rows"
piece proxy md env BUILD_DIR="$BUILD_DIR" PROFILE_SECONDS=5 bench/proxy/run.sh "${PROXY_SECONDS:-8}" \
  "${PROXY_CONNS:-32,64}"
piece streams md env BUILD_DIR="$BUILD_DIR" bench/proxy/streams.sh "${STREAMS:-9000}"
piece idle md env BUILD_DIR="$BUILD_DIR" bench/proxy/idle.sh "${IDLE:-10000}" "${PROXY_SECONDS:-8}"
piece replicas md env BUILD_DIR="$BUILD_DIR" bench/replicas/run.sh "${PROXY_SECONDS:-8}" 32 "$store_rows"

# The summary, also kept as a script that rewrites it from the saved outputs
# (after editing bench/METHODS.md or bench/NOTES.md, the hand-written text placed under the table).
summarize=(python3 bench/summarize.py "$out_file" --command "$command_line" --date "$start_date"
  --load "$start_load" --wall "$(($(date +%s) - started))" --methods bench/METHODS.md --notes bench/NOTES.md
  "${pieces[@]}")
printf '#!/bin/sh\n# Rewrites %s from this run'"'"'s saved outputs; run from the source root.\n%s\n' "$out_file" \
  "${summarize[*]@Q}" >"$results/summarize.sh"
chmod +x "$results/summarize.sh"
mkdir -p "$(dirname "$out_file")"
"${summarize[@]}" | tee -a "$log" || status=1
echo "wrote $out_file (log: $log)"
exit "$status"
