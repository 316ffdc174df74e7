#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# serve-local with many long streams: STREAMS concurrent
# streaming requests through serve-local to an upstream (streams.py) that
# trickles EVENTS text deltas INTERVAL seconds apart. Reports whether every
# stream completed, how long each stream's first event (and every event) took
# from the upstream sending it to the client reading it, serve-local's peak
# resident memory, and the p99 of short non-streaming requests (wrk, 8
# connections) with the streams running next to the same load without them.
#
# Usage: bench/proxy/streams.sh [STREAMS] [EVENTS] [INTERVAL] [SERVE_THREADS]
#   defaults 1000 streams, 20 events 1 s apart, serve-local --threads 1024
#   (each stream holds one worker; "default" leaves --threads out).
#   Env SPREAD: seconds over which the streams open (default 10, shorter than
#   the streams, so all are open at once from then on).
# Exits 1 when a stream or a short request failed. The streams also run
# straight to the upstream first, as the reference for the delays: the client
# and upstream are Python and share the cores.
set -euo pipefail
source "$(dirname "$0")/common.sh"
streams=${1:-1000}
events=${2:-20}
interval=${3:-1}
serve_threads=${4:-1024}
short_conns=8
short_seconds=5
spread=${SPREAD:-10} # seconds over which the streams open; all are open together from then on
need wrk python3

python3 "$here/streams.py" upstream "$scratch/upstream.port" "$events" "$interval" &
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

# Streams straight to the upstream first (the client's and upstream's own
# delays on this machine), then through serve-local with short requests beside.
upstream_url="http://127.0.0.1:$(cat "$scratch/upstream.port")"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
python3 "$here/streams.py" client "$upstream_url" "$TOKEN" "$streams" 0 "$spread" >"$scratch/direct.json" ||
  die "the stream client failed against the upstream"
alone=$(wrk_result "$SERVE_URL" 1 "$short_conns" "$short_seconds")
python3 "$here/streams.py" client "$SERVE_URL" "$TOKEN" "$streams" "$SERVE_PID" "$spread" \
  >"$scratch/served.json" &
client=$!
pids+=("$client")
sleep $((spread + 2))
beside=$(wrk_result "$SERVE_URL" 1 "$short_conns" "$short_seconds")
wait "$client" || die "the stream client failed against serve-local"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
stop_serve_local

echo
echo "### serve-local with $streams concurrent streams ($events events ${interval} s apart)"
echo
echo "machine: $(nproc) cores; load average before $load_before, after $load_after;" \
  "serve-local --threads $serve_threads; delays are client read time minus upstream send time"
echo
python3 - "$scratch/direct.json" "$scratch/served.json" "$alone" "$beside" <<'EOF'
import json, sys
direct, served = (json.load(open(name)) for name in sys.argv[1:3])
short = [dict(kv.split("=") for kv in line.split()[1:]) for line in sys.argv[3:]]
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
print(f"- serve-local RSS: {served['rss_idle_mib']} MiB before, peak {served['rss_peak_mib']} MiB (target < 256 MiB)")
print(f"- short requests through serve-local (wrk -t 1 -c 8): alone {short[0]['rps']} req/s,"
      f" p99 {short[0]['p99_ms']} ms; beside the streams {short[1]['rps']} req/s, p99 {short[1]['p99_ms']} ms"
      f" (non-2xx {short[0]['non2xx']} / {short[1]['non2xx']})")
# RESULT lines for bench/summarize.py, which holds the goals.
f, d = served["first_event_ms"], direct["first_event_ms"]
print(f'RESULT streams.completed {served["completed"]} streams "{served["completed"]} of {served["streams"]} through'
      f' serve-local" "{direct["completed"]} of {direct["streams"]} straight to the upstream"')
print(f'RESULT streams.first_event {f["max"]:.1f} ms "first event p50 {f["p50"]:.1f} / p99 {f["p99"]:.1f} / max'
      f' {f["max"]:.1f} ms, {served["first_over_50ms"]} over 50 ms" "straight to the upstream: p99 {d["p99"]:.1f} /'
      f' max {d["max"]:.1f} ms"')
print(f'RESULT streams.rss {served["rss_peak_mib"]} MiB "peak RSS {served["rss_peak_mib"]} MiB'
      f' ({served["rss_idle_mib"]} MiB idle)" "-"')
beside, alone = float(short[1]["p99_ms"]), float(short[0]["p99_ms"])
print(f'RESULT streams.short_p99 {beside - alone:.3f} ms "p99 {beside:.3f} ms beside the streams"'
      f' "p99 {alone:.3f} ms alone (wrk -t 1 -c 8)"')
failed = direct["failed"] + served["failed"]
sys.exit(0 if failed == 0 and all(s["non2xx"] == "0" == s["socket_errors"] for s in short) else 1)
EOF
