#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# serve-local with many long streams (issue #16 targets 4 and 5): STREAMS
# concurrent streaming requests through serve-local to an upstream
# (streams.py) that trickles EVENTS text deltas INTERVAL seconds apart.
# Reports whether every stream completed, how long each stream's first event
# (and every event) took from the upstream sending it to the client reading
# it, serve-local's peak resident memory during the streams, and the p99 of
# short non-streaming requests (wrk, 8 connections) with the streams running
# next to the same load without them.
#
# Usage: bench/proxy/streams.sh [STREAMS] [EVENTS] [INTERVAL] [SERVE_THREADS]
#   defaults 9000 streams (issue #16 target 4), 20 events 1 s apart, SERVE_THREADS "default":
#   serve-local's own default (no --threads); a number passes --threads N.
# Env: CG (claudegate binary, as in run.sh), SPREAD (seconds over which the
#   streams open, default 10: shorter than the streams, so all are open at
#   once from then on), STREAM_PROCS (processes of the Python client and of
#   the Python upstream each, default 2), STREAM_SOURCES (loopback source
#   addresses the client spreads its streams over, default 1 = 127.0.0.1).
# The soft open-file limit is raised to the hard one: serve-local holds two
# sockets per stream. The streams also run straight to the upstream first, as
# the reference for the delays: the client and upstream are Python (asyncio on
# epoll, several processes) and share the cores with serve-local.
# Exits 1 when a stream or a short request failed.
set -euo pipefail
source "$(dirname "$0")/common.sh"
streams=${1:-9000}
events=${2:-20}
interval=${3:-1}
serve_threads=${4:-default}
short_conns=8
short_seconds=5
spread=${SPREAD:-10}
procs=${STREAM_PROCS:-2}
sources=${STREAM_SOURCES:-1}
# A stream not done this long after it opened counts as failed (no hang).
stream_timeout=$(awk -v e="$events" -v i="$interval" 'BEGIN { print e * i + 30 }')
need wrk python3
need_files $((2 * streams + 200)) # serve-local: the client's and the upstream's socket per stream

python3 "$here/streams.py" upstream "$scratch/upstream.port" "$events" "$interval" "$procs" &
pids+=($!)
for ((i = 0; i < 100; i++)); do
  [ -s "$scratch/upstream.port" ] && break
  sleep 0.1
done
[ -s "$scratch/upstream.port" ] || die "the streaming upstream did not start"
mint_token
thread_flags=()
[ "$serve_threads" = default ] || thread_flags=(--threads "$serve_threads")
start_serve_local "http://127.0.0.1:$(cat "$scratch/upstream.port")" "${thread_flags[@]}"

# Field $1 (kB) of serve-local's /proc status, in MiB.
serve_mib() {
  awk -v f="$1:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$SERVE_PID/status"
}

run_client() {
  python3 "$here/streams.py" client "$1" "$TOKEN" "$streams" "$spread" "$stream_timeout" "$procs" "$sources"
}

# Streams straight to the upstream first (the client's and upstream's own
# delays on this machine), then through serve-local with short requests beside.
upstream_url="http://127.0.0.1:$(cat "$scratch/upstream.port")"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
run_client "$upstream_url" >"$scratch/direct.json" || die "the stream client failed against the upstream"
alone=$(wrk_result "$SERVE_URL" 1 "$short_conns" "$short_seconds")
rss_idle=$(serve_mib VmRSS)
# The peak (VmHWM) restarts from the current RSS (proc(5), clear_refs 5), so
# the peak below is the streams'; where not allowed, it is since start.
hwm_scope="during the streams"
echo 5 2>/dev/null >"/proc/$SERVE_PID/clear_refs" || hwm_scope="since serve-local started"
run_client "$SERVE_URL" >"$scratch/served.json" &
client=$!
pids+=("$client")
sleep $((spread + 2))
beside=$(wrk_result "$SERVE_URL" 1 "$short_conns" "$short_seconds")
overlap="the streams were open through the whole short-request run"
kill -0 "$client" 2>/dev/null ||
  overlap="NOTE: the streams ended before the short-request run did (EVENTS × INTERVAL < SPREAD + 2 + $short_seconds s)"
wait "$client" || die "the stream client failed against serve-local"
rss_peak=$(serve_mib VmHWM)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
stop_serve_local

echo
echo "### serve-local with $streams concurrent streams ($events events ${interval} s apart)"
echo
echo "machine: $(nproc) cores; load average before $load_before, after $load_after;" \
  "serve-local threads: $serve_threads; client and upstream: $procs Python processes each," \
  "$sources client source address(es); delays are client read time minus upstream send time"
echo
python3 - "$scratch/direct.json" "$scratch/served.json" "$rss_idle" "$rss_peak" "$hwm_scope" "$alone" "$beside" \
  "$overlap" <<'EOF'
import json, sys
direct, served = (json.load(open(name)) for name in sys.argv[1:3])
rss_idle, rss_peak, hwm_scope = float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
short = [dict(kv.split("=") for kv in line.split()[1:]) for line in sys.argv[6:8]]
overlap = sys.argv[8]
print("| path | streams completed | first event p50 / p99 / max ms | first > 50 ms | every event p50 / p99 / max ms |")
print("|---|---|---|---|---|")
for name, r in (("straight to upstream", direct), ("through serve-local", served)):
    f, e = r["first_event_ms"], r["event_ms"]
    print(f"| {name} | {r['completed']} of {r['streams']} ({r['seconds']} s) | {f['p50']:.1f} / {f['p99']:.1f} /"
          f" {f['max']:.1f} | {r['first_over_50ms']} | {e['p50']:.1f} / {e['p99']:.1f} / {e['max']:.1f} |")
print()
for r in (direct, served):
    if r["errors"]:
        print(f"- failures ({r['failed']}): {'; '.join(r['errors'])}")
print(f"- serve-local RSS: {rss_idle} MiB before the streams, peak {rss_peak} MiB {hwm_scope} (VmHWM)")
print(f"- short requests through serve-local (wrk -t 1 -c 8): alone {short[0]['rps']} req/s,"
      f" p99 {short[0]['p99_ms']} ms; beside the streams {short[1]['rps']} req/s, p99 {short[1]['p99_ms']} ms"
      f" (non-2xx {short[0]['non2xx']} / {short[1]['non2xx']}); {overlap}")
# RESULT lines for bench/summarize.py, which holds the goals.
f, d, n = served["first_event_ms"], direct["first_event_ms"], served["streams"]
print(f'RESULT streams.completed {served["completed"]} streams "{served["completed"]} of {n} through'
      f' serve-local" "{direct["completed"]} of {direct["streams"]} straight to the upstream"')
print(f'RESULT streams.first_event {f["max"]:.1f} ms "first event p50 {f["p50"]:.1f} / p99 {f["p99"]:.1f} / max'
      f' {f["max"]:.1f} ms, {served["first_over_50ms"]} over 50 ms" "straight to the upstream: p99 {d["p99"]:.1f} /'
      f' max {d["max"]:.1f} ms"')
print(f'RESULT streams.first_event_p99 {f["p99"]:.1f} ms "first event p99 {f["p99"]:.1f} ms of {served["completed"]}'
      f' streams through serve-local" "straight to the upstream: p99 {d["p99"]:.1f} ms"')
print(f'RESULT streams.rss {rss_peak} MiB "peak RSS {rss_peak} MiB with {n} streams ({rss_idle} MiB before)" "-"')
beside, alone = float(short[1]["p99_ms"]), float(short[0]["p99_ms"])
print(f'RESULT streams.short_p99 {beside - alone:.3f} ms "p99 {beside:.3f} ms beside {n} streams"'
      f' "p99 {alone:.3f} ms alone (wrk -t 1 -c 8)"')
failed = direct["failed"] + served["failed"]
short_failed = not all(s["non2xx"] == "0" == s["socket_errors"] for s in short)
if failed or short_failed:
    print(f"- FAILED: {failed} streams failed; short requests: non-2xx {short[0]['non2xx']} / {short[1]['non2xx']},"
          f" socket errors (a run with no answer counts one) {short[0]['socket_errors']} / {short[1]['socket_errors']}")
sys.exit(1 if failed or short_failed else 0)
EOF
