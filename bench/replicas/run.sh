#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Replicas on PostgreSQL (issue #17), two rows in one run:
#  - throughput: the bench/proxy/run.sh wrk load (messages.lua, keep-alive,
#    canned nginx upstream, every request verified, quota-leased and metered)
#    at CONNECTIONS through 2 serve-local replicas sharing one PostgreSQL
#    database (two wrk processes, -t 1 and half the connections each, started
#    together; req/s summed) next to 1 serve-local on SQLite (one wrk, -t 2,
#    all the connections), the reference;
#  - `usage-report` over ROWS ledger rows on PostgreSQL (inserted with
#    generate_series through psql; the day rollups rebuilt by SQL when the
#    schema has them and the inserts did not fill them), best of 5 runs of each
#    listed form, the command end to end (process start, connect, query,
#    render to /dev/null); its totals are checked against a plain GROUP BY.
# Prints markdown tables and RESULT lines for bench/summarize.py (rows 17.x).
#
# Usage: bench/replicas/run.sh [SECONDS] [CONNECTIONS] [ROWS]   (defaults 8, 32, 1000000)
# Env: as bench/proxy/run.sh (CG, BUILD_DIR, NGINX, WARMUP); CLAUDEGATE_TEST_POSTGRES (an admin
#   URI: the databases are made there) or, unset, a throwaway cluster from scripts/pg-cluster.sh.
# Exits 1 when a measured request was not a 2xx or hit a socket error, when a
# ledger misses requests, or when usage-report's totals differ from SQL's.
set -euo pipefail
# shellcheck source=../proxy/common.sh
source "$(dirname "$0")/../proxy/common.sh"
seconds=${1:-8}
conns=${2:-32}
rows=${3:-1000000}
WARMUP=${WARMUP:-2}
need wrk curl python3 psql
need_nginx

# PostgreSQL: the test server when given, else our own cluster (stopped on exit).
pg_dir=""
if [ -n "${CLAUDEGATE_TEST_POSTGRES:-}" ]; then
  admin=$CLAUDEGATE_TEST_POSTGRES
else
  pg_dir=$(mktemp -d)
  chmod 711 "$pg_dir"
  admin=$("$root/scripts/pg-cluster.sh" start "$pg_dir/cluster") || die "could not start PostgreSQL"
fi
databases=()
bench_cleanup() {
  local db
  for db in "${databases[@]}"; do
    psql -X -q -d "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  if [ -n "$pg_dir" ]; then
    "$root/scripts/pg-cluster.sh" stop "$pg_dir/cluster" || true
    rm -rf "$pg_dir"
  fi
}
trap 'cleanup; bench_cleanup' EXIT

# A fresh database, dropped on exit; sets NEW_DB to its URI.
new_database() {
  local name=cg_bench_$1_$$ base=${admin%%\?*}
  psql -X -q -v ON_ERROR_STOP=1 -d "$admin" -c "CREATE DATABASE $name" >/dev/null || die "cannot create $name"
  databases+=("$name")
  NEW_DB=${base%/*}/$name${admin#"$base"}
}

# wrk over the replicas at URLs "$@", $conns connections split evenly, one
# thread each, for $1 seconds (first argument); prints one "result …" line:
# summed rps, requests, non2xx, socket_errors; the worst p50/p99/max.
wrk_split() {
  local length=$1 n i
  shift
  n=$#
  i=0
  for url in "$@"; do
    wrk_result "$url" 1 $((conns / n)) "$length" >"$scratch/wrk.$i" &
    i=$((i + 1))
  done
  wait
  cat "$scratch"/wrk.* | awk '{
      for (f = 2; f <= NF; f++) { split($f, kv, "="); v[kv[1]] = kv[2]
        if (kv[1] ~ /^(rps|requests|non2xx|socket_errors)$/) sum[kv[1]] += kv[2]
        else if (kv[2] > worst[kv[1]]) worst[kv[1]] = kv[2] } }
    END { printf "result rps=%.1f requests=%d non2xx=%d socket_errors=%d p50_ms=%s p99_ms=%s max_ms=%s\n",
          sum["rps"], sum["requests"], sum["non2xx"], sum["socket_errors"], worst["p50_ms"], worst["p99_ms"],
          worst["max_ms"] }'
  rm -f "$scratch"/wrk.*
}

# Prints the ledger's request count for sub bench; fails unless it holds at
# least the $1 requests wrk counted, each with the upstream's 42 output tokens
# (the requests a stopping wrk cut short are metered too, without usage).
metered_at_least() {
  "$CG" usage-report --sub bench --format json | python3 -c 'import json, sys
totals = json.load(sys.stdin)["totals"]
print(totals["requests"])
sys.exit(0 if totals["requests"] >= int(sys.argv[1]) and totals["output_tokens"] >= 42 * int(sys.argv[1]) else 1)' "$1"
}

failed=0
# A warm-up, then the measured line over the servers at URLs "$@"; prints the measured line.
measure_over() {
  local line
  wrk_split "$WARMUP" "$@" >/dev/null
  line=$(wrk_split "$seconds" "$@")
  if [ "$(field "$line" non2xx)" != 0 ] || [ "$(field "$line" socket_errors)" != 0 ]; then failed=1; fi
  echo "$line"
}

read -r up_port _ < <(free_ports)
start_nginx upstream upstream.site 1 "PORT=$up_port"
wait_http "http://127.0.0.1:$up_port/"
mint_token

# ---- 1 serve-local on SQLite (the home's file) --------------------------------
start_serve_local "http://127.0.0.1:$up_port"
wrk_result "$SERVE_URL" 2 "$conns" "$WARMUP" >/dev/null
sqlite_line=$(wrk_result "$SERVE_URL" 2 "$conns" "$seconds")
if [ "$(field "$sqlite_line" non2xx)" != 0 ] || [ "$(field "$sqlite_line" socket_errors)" != 0 ]; then failed=1; fi
stop_serve_local
sqlite_metered=$(metered_at_least "$(field "$sqlite_line" requests)") ||
  die "serve-local on SQLite metered ${sqlite_metered:-?} requests: fewer than the $(field "$sqlite_line" requests) wrk counted, or not each with the upstream's usage"

# ---- 2 serve-local on one PostgreSQL database ---------------------------------
new_database rps
export CLAUDEGATE_DB=$NEW_DB
replica_urls=()
replica_pids=()
for _ in 1 2; do
  start_serve_local "http://127.0.0.1:$up_port"
  replica_urls+=("$SERVE_URL")
  replica_pids+=("$SERVE_PID")
done
pg_line=$(measure_over "${replica_urls[@]}")
for SERVE_PID in "${replica_pids[@]}"; do stop_serve_local; done
pg_metered=$(metered_at_least "$(field "$pg_line" requests)") ||
  die "the replicas on PostgreSQL metered ${pg_metered:-?} requests: fewer than the $(field "$pg_line" requests) wrk counted, or not each with the upstream's usage"
unset CLAUDEGATE_DB

echo "### 2 replicas on PostgreSQL vs 1 serve-local on SQLite (wrk, keep-alive, $conns connections, ${seconds} s after ${WARMUP} s warm-up)"
echo
echo "machine: $(nproc) cores; PostgreSQL $(psql -X -At -d "$admin" -c 'show server_version')" \
  "$([ -n "$pg_dir" ] && echo '(a throwaway cluster, fsync off)' || echo '(the test server)')"
echo
echo '| target | wrk | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | metered |'
echo '|---|---|---|---|---|---|---|---|---|'
printf '| 1 serve-local, SQLite | -t 2 -c %s | %s | %s | %s | %s | %s | %s | %s |\n' "$conns" \
  "$(field "$sqlite_line" rps)" "$(field "$sqlite_line" p50_ms)" "$(field "$sqlite_line" p99_ms)" \
  "$(field "$sqlite_line" max_ms)" "$(field "$sqlite_line" non2xx)" "$(field "$sqlite_line" socket_errors)" "$sqlite_metered"
printf '| 2 serve-local, one PostgreSQL | 2 × (-t 1 -c %s) | %s | %s | %s | %s | %s | %s | %s |\n' $((conns / 2)) \
  "$(field "$pg_line" rps)" "$(field "$pg_line" p50_ms)" "$(field "$pg_line" p99_ms)" \
  "$(field "$pg_line" max_ms)" "$(field "$pg_line" non2xx)" "$(field "$pg_line" socket_errors)" "$pg_metered"
echo
awk -v c="$conns" -v p="$(field "$pg_line" rps)" -v s="$(field "$sqlite_line" rps)" 'BEGIN {
  printf "RESULT replicas.rps.%s %.1f %% \"2 replicas on PostgreSQL %.0f req/s\" \"1 serve-local on SQLite %.0f req/s\"\n",
    c, 100 * p / s, p, s }'

# ---- usage-report over $rows ledger rows on PostgreSQL ------------------------
new_database report
report_db=$NEW_DB
"$CG" --db "$report_db" usage-report >/dev/null # creates the schema
now=$(date +%s)
seed_started=$(date +%s%N)
# 200 subjects, 4 models, spread over the 30 days ending now (as bench_report's seed).
psql -X -q -v ON_ERROR_STOP=1 -d "$report_db" <<SQL || die "seeding the ledger failed"
INSERT INTO usage_ledger (at, subject, jti, model, status, input_tokens, output_tokens, cache_read_tokens,
                          cache_write_tokens, latency_ms, request_id, stream, quota_limit)
SELECT $now - (i * 2592000::bigint / $rows), 'user' || (i % 200), 'jti' || i,
       (ARRAY['claude-haiku-4-5', 'claude-sonnet-4-5', 'claude-opus-4-1', 'claude-3-5-haiku-latest'])[1 + i % 4],
       200, 20 + i % 500, 10 + i % 300, i % 7, i % 3, 100, 'req_' || i, 0, NULL
FROM generate_series(1, $rows) AS i;
SQL
# The day rollups, when the schema keeps them and the inserts above did not.
if [ "$(psql -X -At -d "$report_db" -c "select to_regclass('usage_daily') is not null")" = t ] &&
  [ "$(psql -X -At -d "$report_db" -c 'select count(*) from usage_daily')" = 0 ]; then
  psql -X -q -v ON_ERROR_STOP=1 -d "$report_db" <<'SQL' || die "rebuilding usage_daily failed"
INSERT INTO usage_daily (day, subject, model, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
SELECT at - at % 86400, subject, model, count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens),
       sum(cache_write_tokens)
FROM usage_ledger GROUP BY 1, 2, 3;
SQL
  if [ "$(psql -X -At -d "$report_db" -c "select to_regclass('usage_subjects') is not null")" = t ]; then
    psql -X -q -v ON_ERROR_STOP=1 -d "$report_db" -c "INSERT INTO usage_subjects (subject, last_at, quota_limit)
      SELECT subject, max(at), NULL FROM usage_ledger GROUP BY subject ON CONFLICT DO NOTHING" ||
      die "rebuilding usage_subjects failed"
  fi
fi
psql -X -q -d "$report_db" -c 'ANALYZE' >/dev/null
seed_ms=$((($(date +%s%N) - seed_started) / 1000000))

# usage-report's totals over the 30 days against a plain GROUP BY-free SUM.
since=$((now - 30 * 86400))
until_=$((now + 1))
sql_totals=$(psql -X -At -F ' ' -d "$report_db" -c "select count(*), sum(input_tokens), sum(output_tokens)
  from usage_ledger where at >= $since and at < $until_")
cg_totals=$("$CG" --db "$report_db" usage-report --since "$since" --until "$until_" --format json | python3 -c '
import json, sys
t = json.load(sys.stdin)["totals"]
print(t["requests"], t["input_tokens"], t["output_tokens"])')
[ "$sql_totals" = "$cg_totals" ] || die "usage-report's totals ($cg_totals) differ from SQL's ($sql_totals)"

# Best wall time in ms of 5 runs of "$@" (output discarded).
best_of_5_ms() {
  python3 -c 'import subprocess, sys, time
def run():
    start = time.monotonic()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
    return time.monotonic() - start
print(round(1000 * min(run() for _ in range(5))))' "$@"
}
echo
echo "### usage-report over $rows ledger rows on PostgreSQL (seeded in $seed_ms ms; best of 5)"
echo
echo '| form | ms |'
echo '|---|---|'
worst=0
worst_form=""
for range in "" "--since $since --until $until_"; do
  for by in "" "--by sub" "--by day" "--by sub,day,model" "--by sub,day,model --format json"; do
    # shellcheck disable=SC2086 # word splitting of the flag lists is intended
    ms=$(best_of_5_ms "$CG" --db "$report_db" usage-report $range $by) || die "usage-report $range $by failed"
    form="usage-report ${range:+--since/--until 30 days }$by"
    printf '| `%s` | %s |\n' "${form% }" "$ms"
    if ((ms > worst)); then
      worst=$ms
      worst_form=$form
    fi
  done
done
echo
echo "- usage-report's totals over the 30 days equal SQL's: $cg_totals (requests, input, output tokens)"
echo "RESULT replicas.report $worst ms \"worst: ${worst_form% }, $rows rows on PostgreSQL (best of 5)\" \"-\""
[ "$failed" = 0 ] || die "some requests failed (non-2xx or socket errors above)"
