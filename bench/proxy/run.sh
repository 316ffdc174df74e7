#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# serve-local under load: the same wrk load, in one run,
# sent straight to a trivial nginx upstream answering a canned Messages JSON,
# through a plain nginx reverse proxy (proxy_pass, upstream keep-alive) and
# through serve-local with token verification, quota reserve/settle and usage
# metering all on. Prints a markdown table and, for bench/summarize.py, RESULT
# lines with serve-local's throughput, p99 and CPU time per request next to
# nginx's (issue #16 targets 1-3), and checks that the ledger holds every
# request serve-local answered.
#
# Usage: bench/proxy/run.sh [SECONDS] [CONNECTIONS[,CONNECTIONS…]] [THREADS]
#   defaults 10 s per line, 32 and 64 connections, 2 wrk threads.
# Env: CG (claudegate binary; default $BUILD_DIR/apps/claudegate/claudegate,
#   BUILD_DIR default build-release), NGINX, WARMUP (seconds, default 2),
#   PROXY_WORKERS (nginx proxy worker_processes, default auto = one per core,
#   the cores serve-local's thread pool can use too; the upstream nginx always
#   runs 1 worker), PROFILE_SECONDS (default 0: off; else one more line of
#   that length at the last connection count with perf sampling serve-local,
#   for the share of its CPU time in SQLite), PROFILE_DIR (keep that
#   profile's perf.data and reports there, for `perf report -i`).
# The table also gives each server's CPU time per request (load-independent
# on a busy machine) and the kernel's listen-queue drops during each line.
# Exits 1 when any measured request was not a 2xx or hit a socket error, or
# when serve-local's ledger misses requests or their usage.
set -euo pipefail
source "$(dirname "$0")/common.sh"
seconds=${1:-10}
conn_list=${2:-32,64}
threads=${3:-2}
WARMUP=${WARMUP:-2}
PROXY_WORKERS=${PROXY_WORKERS:-auto}
PROFILE_SECONDS=${PROFILE_SECONDS:-0}
need wrk curl python3
need_nginx

# One request like wrk's to $1: must be 200 with a usage block; $2 = header it must carry.
probe() {
  local url=$1 header=${2:-} status
  status=$(curl -s --max-time 5 -o "$scratch/probe.body" -D "$scratch/probe.head" -w '%{http_code}' \
    -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -H 'anthropic-version: 2023-06-01' \
    --data '{"model":"claude-3-5-haiku-latest","max_tokens":256,"messages":[{"role":"user","content":"hi"}]}' \
    "$url/v1/messages") || true
  [ "$status" = 200 ] || die "$url/v1/messages answered $status: $(cat "$scratch/probe.body")"
  grep -q '"usage"' "$scratch/probe.body" || die "$url/v1/messages: no usage in $(cat "$scratch/probe.body")"
  if [ -n "$header" ] && ! grep -qi "^$header:" "$scratch/probe.head"; then
    die "$url/v1/messages: no $header header (quota check off?)"
  fi
}

# The kernel's count of connections dropped because a listen queue was full
# (system-wide, so other programs' drops would show too).
listen_drops() {
  awk '/^TcpExt:/ { if (!n) { for (i = 1; i <= NF; i++) if ($i == "ListenDrops") col = i; n = 1 }
                    else print $col }' /proc/net/netstat
}

# CPU time (user + system, ms) used so far by process $1 and its children
# (nginx's workers; serve-local's threads are in its own figures).
cpu_ms() {
  local pid ticks=0 fields
  for pid in "$1" $(ps -o pid= --ppid "$1"); do
    read -r -a fields <"/proc/$pid/stat"
    ticks=$((ticks + fields[13] + fields[14]))
  done
  echo $((ticks * 1000 / $(getconf CLK_TCK)))
}

# wrk at $2 connections against $1 (served by process $3) after a warm-up;
# prints wrk's "result …" line plus listen_drops=N (listen-queue drops),
# cpu_ms=N and cpu_us=N (the server's CPU time, and per answered request) for
# the measurement, and warm_requests=N (the warm-up's answered requests).
measure() {
  local drops cpu line warm
  warm=$(wrk_result "$1" "$threads" "$2" "$WARMUP")
  drops=$(listen_drops)
  cpu=$(cpu_ms "$3")
  line=$(wrk_result "$1" "$threads" "$2" "$seconds")
  cpu=$(($(cpu_ms "$3") - cpu))
  local answered
  answered=$(field "$line" requests)
  echo "$line listen_drops=$(($(listen_drops) - drops)) cpu_ms=$cpu" \
    "cpu_us=$(awk -v c="$cpu" -v n="$answered" 'BEGIN { printf "%.1f", 1000 * c / (n > 0 ? n : 1) }')" \
    "warm_requests=$(field "$warm" requests)"
}

declare -A results
profiled=0
failed=0
record() {
  local key=$1 line=$2
  results[$key]=$line
  if [ "$(field "$line" non2xx)" != 0 ] || [ "$(field "$line" socket_errors)" != 0 ]; then
    failed=1
  fi
}

table_row() {
  local conns=$1 name=$2 line=$3 errors
  errors="$(field "$line" socket_errors) ($(field "$line" connect)/$(field "$line" read)/$(field "$line" write)"
  errors+="/$(field "$line" timeout))"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$conns" "$name" "$(field "$line" rps)" \
    "$(field "$line" p50_ms)" "$(field "$line" p90_ms)" "$(field "$line" p99_ms)" "$(field "$line" max_ms)" \
    "$(field "$line" non2xx)" "$errors" "$(field "$line" listen_drops)" "$(field "$line" cpu_us)"
}

# serve-local against the nginx proxy at $1 connections: RESULT lines for
# bench/summarize.py (throughput as a percentage of nginx's, p99 difference,
# CPU time per request as a multiple of nginx's: all of the nginx proxy's
# processes, master and workers, against serve-local's one process).
result_lines() {
  local conns=$1 sl=${results[serve-local:$1]} ng=${results[nginx-proxy:$1]}
  awk -v c="$conns" -v sr="$(field "$sl" rps)" -v nr="$(field "$ng" rps)" \
    -v sp="$(field "$sl" p99_ms)" -v np="$(field "$ng" p99_ms)" \
    -v sc="$(field "$sl" cpu_ms)" -v sn="$(field "$sl" requests)" \
    -v nc="$(field "$ng" cpu_ms)" -v nn="$(field "$ng" requests)" 'BEGIN {
      printf "RESULT proxy.rps.%s %.1f %% \"serve-local %.0f req/s\" \"nginx proxy_pass %.0f req/s\"\n", c,
        100 * sr / nr, sr, nr
      printf "RESULT proxy.p99.%s %.3f ms \"serve-local p99 %.3f ms\" \"nginx proxy_pass p99 %.3f ms\"\n", c,
        sp - np, sp, np
      su = 1000 * sc / (sn > 0 ? sn : 1); nu = 1000 * nc / (nn > 0 ? nn : 1); ratio = (nu > 0 ? su / nu : 999)
      printf "RESULT proxy.cpu.%s %.2f × \"serve-local %.1f µs CPU per request (%d ms / %d requests)\"" \
        " \"nginx proxy_pass %.1f µs CPU per request (master + workers, %d ms / %d requests)\"\n", c,
        ratio, su, sc, sn, nu, nc, nn
    }'
}

# Share of serve-local's CPU time spent in SQLite: perf
# samples serve-local's CPU time (cpu-clock, frame-pointer call graphs) during
# one more wrk line of PROFILE_SECONDS at $1 connections, not among the
# measured lines. "Self" is time in libsqlite3's own code; "with callees" adds
# what the call graphs attribute below it (the kernel's write/fsync work is
# only partly seen: SQLite is built without frame pointers). Prints why not
# when perf cannot sample.
profile_sqlite() {
  local conns=$1 data=$scratch/perf.data shares samples children self
  if ! command -v perf >/dev/null; then
    echo "- SQLite share not measured: perf is not installed"
    return 0
  fi
  perf record -q -e cpu-clock -F 999 -g -p "$SERVE_PID" -o "$data" -- sleep "$PROFILE_SECONDS" \
    2>"$scratch/perf.err" &
  local perf_pid=$!
  profiled=$(field "$(wrk_result "$SERVE_URL" "$threads" "$conns" "$PROFILE_SECONDS")" requests)
  if ! wait "$perf_pid"; then
    echo "- SQLite share not measured: perf record failed: $(head -c 300 "$scratch/perf.err")"
    return 0
  fi
  perf report -i "$data" --children --sort dso --stdio -g none >"$scratch/perf.txt" 2>/dev/null || true
  samples=$(awk '/^# Samples:/ && !seen++ { print $3 }' "$scratch/perf.txt")
  if ldd "$CG" | grep -q libsqlite3; then
    shares=$(awk '$NF ~ /^libsqlite3/ && !seen++ { gsub("%", ""); print $1, $2 }' "$scratch/perf.txt")
    read -r children self <<<"${shares:-0 0}"
    children="$children%"
  else
    # SQLite is linked in statically: its share is that of the functions the
    # archive defines (self time only; call graphs do not cross its code).
    perf report -i "$data" --no-children --sort sym --stdio -g none >"$scratch/perf_sym.txt" 2>/dev/null || true
    nm --defined-only "$(gcc -print-file-name=libsqlite3.a)" 2>/dev/null | awk 'NF == 3 { print $3 }' \
      >"$scratch/sqlite_symbols.txt"
    self=$(awk 'NR == FNR { sqlite[$1] = 1; next }
                /^ +[0-9.]+%/ && ($NF in sqlite) { gsub("%", "", $1); sum += $1 }
                END { printf "%.2f", sum }' "$scratch/sqlite_symbols.txt" "$scratch/perf_sym.txt")
    children="n/a (static SQLite)"
  fi
  echo "- serve-local CPU time in SQLite (${samples:-0} perf cpu-clock samples, $PROFILE_SECONDS s at $conns" \
    "connections, not a measured line): ${self}% self, with callees ${children}"
  echo "- where serve-local's CPU time goes in that profile (shared object: self %, with callees %):" \
    "$(awk '/^ +[0-9.]+%/ && n++ < 8 { printf "%s%s %s / %s", sep, $3, $2, $1; sep = "; " }' "$scratch/perf.txt")"
  if [ -n "${PROFILE_DIR:-}" ]; then
    mkdir -p "$PROFILE_DIR" && cp "$data" "$scratch"/perf*.txt "$PROFILE_DIR"/
  fi
  echo "RESULT store.sqlite_share $self % \"${self}% self, with callees ${children}, ${samples:-0} samples\" \"-\""
}

read -r up_port proxy_port < <(free_ports)
start_nginx upstream upstream.site 1 "PORT=$up_port"
start_nginx nginx-proxy proxy.site "$PROXY_WORKERS" "PORT=$proxy_port" "UPSTREAM_PORT=$up_port"
mint_token
start_serve_local "http://127.0.0.1:$up_port"
wait_http "http://127.0.0.1:$up_port/"
wait_http "http://127.0.0.1:$proxy_port/"
server_pids[serve-local]=$SERVE_PID
declare -A urls=([upstream]="http://127.0.0.1:$up_port" [nginx-proxy]="http://127.0.0.1:$proxy_port"
  [serve-local]="$SERVE_URL")
probe "${urls[upstream]}"
probe "${urls[nginx-proxy]}"
probe "${urls[serve-local]}" x-claudegate-quota-remaining

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
IFS=, read -r -a conn_counts <<<"$conn_list"
for conns in "${conn_counts[@]}"; do
  for name in upstream nginx-proxy serve-local; do
    line=$(measure "${urls[$name]}" "$conns" "${server_pids[$name]}") || exit 1
    record "$name:$conns" "$line"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "### serve-local vs nginx (non-streaming, keep-alive, wrk -t $threads, ${seconds} s per line after ${WARMUP} s warm-up)"
echo
echo "machine: $(nproc) cores; load average before $load_before, after $load_after;" \
  "nginx proxy worker_processes $PROXY_WORKERS, upstream nginx 1 worker"
echo
echo '| conns | target | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | socket errors (connect/read/write/timeout) | listen-queue drops | server CPU µs/request |'
echo '|---|---|---|---|---|---|---|---|---|---|---|'
for conns in "${conn_counts[@]}"; do
  for name in upstream nginx-proxy serve-local; do
    table_row "$conns" "$name" "${results[$name:$conns]}"
  done
done
echo
for conns in "${conn_counts[@]}"; do result_lines "$conns"; done
[ "$PROFILE_SECONDS" = 0 ] || profile_sqlite "${conn_counts[-1]}"
stop_serve_local
# Every request serve-local answered must be in the ledger: the probe, the
# warm-ups, the measured lines and the profile's line as wrk counted them, plus
# at most one request per connection that each wrk run left in flight.
answered=$((1 + profiled))
in_flight=$((PROFILE_SECONDS == 0 ? 0 : ${conn_counts[-1]}))
for conns in "${conn_counts[@]}"; do
  line=${results[serve-local:$conns]}
  answered=$((answered + $(field "$line" warm_requests) + $(field "$line" requests)))
  in_flight=$((in_flight + 2 * conns))
done
metered=$(check_metering "$answered" $((answered + in_flight))) ||
  die "serve-local metered ${metered:-?} requests, not the $answered answered (+ up to $in_flight in flight)" \
    "or not each with the upstream's usage"
echo "- serve-local metered $metered requests, every one it answered (probe, warm-ups, measured lines," \
  "profile: $answered, + up to $in_flight in flight when wrk stopped), 42 output tokens each"
[ "$failed" = 0 ] || die "some requests failed (non-2xx or socket errors above)"
