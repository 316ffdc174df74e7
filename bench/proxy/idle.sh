#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# serve-local holding idle connections (issue #16 target 6): IDLE connections
# that send no token and a partial request head each (idle.py) are opened
# gradually and held open, and meanwhile the same wrk load as run.sh (to a
# trivial nginx upstream) goes through serve-local. Reports wrk's p99 beside
# the idle connections against its p99 without them (measured just before, in
# the same run), how many idle connections serve-local still held at the end
# of that wrk run, and whether /healthz answered while they were held (three
# curl probes: before, during and after that wrk run, with their times).
#
# Usage: bench/proxy/idle.sh [IDLE] [SECONDS] [CONNECTIONS]
#   defaults 10000 idle connections, 8 s per wrk line, 32 wrk connections.
# Env: CG (claudegate binary, as in run.sh), NGINX, WARMUP (seconds, default
#   2), IDLE_RATE (idle connections opened per second, default 2000),
#   IDLE_SOURCES (loopback source addresses they come from, 127.0.0.2 …,
#   default 100, so a per-address connection cap does not refuse them; wrk
#   comes from 127.0.0.1), IDLE_CONFIG (serve-local's config file text,
#   default a [serve] read_timeout of 1 h, so that serve-local's head timeout
#   does not close the idle connections before wrk runs; the held count shows
#   whether it did).
# The soft open-file limit is raised to the hard one. Exits 1 when a wrk
# request failed, /healthz did not answer 200, or the ledger misses requests.
set -euo pipefail
source "$(dirname "$0")/common.sh"
idle=${1:-10000}
seconds=${2:-8}
conns=${3:-32}
threads=2
WARMUP=${WARMUP:-2}
rate=${IDLE_RATE:-2000}
sources=${IDLE_SOURCES:-100}
config=${IDLE_CONFIG:-$'[serve]\nread_timeout = "1h"\n'}
need wrk curl python3
need_nginx
need_files $((idle + conns + 200))

read -r up_port _ < <(free_ports)
start_nginx upstream upstream.site 1 "PORT=$up_port"
mint_token
printf '%s' "$config" >"$CLAUDEGATE_HOME/claudegate.toml"
chmod 600 "$CLAUDEGATE_HOME/claudegate.toml"
start_serve_local "http://127.0.0.1:$up_port"
wait_http "http://127.0.0.1:$up_port/"

# One GET /healthz: prints "status seconds" (status 000: no answer in 5 s).
healthz() {
  curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}' "$SERVE_URL/healthz" || true
}

# The idle holder's last status line, as "k=v …" fields.
holder_status() {
  python3 -c 'import json, sys
print(" ".join(f"{k}={int(v)}" for k, v in json.load(open(sys.argv[1])).items()))' "$scratch/idle.json"
}

[ "$(healthz | cut -d' ' -f1)" = 200 ] || die "serve-local's /healthz does not answer 200"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
warm=$(wrk_result "$SERVE_URL" "$threads" "$conns" "$WARMUP")
alone=$(wrk_result "$SERVE_URL" "$threads" "$conns" "$seconds")

# The idle connections, all attempted before wrk runs again.
python3 "$here/idle.py" 127.0.0.1 "${SERVE_URL##*:}" "$idle" "$rate" "$sources" "$scratch/idle.json" &
holder=$!
pids+=("$holder")
opening=$(date +%s)
until [ -s "$scratch/idle.json" ] && [ "$(field "$(holder_status)" "done")" = 1 ]; do
  kill -0 "$holder" 2>/dev/null || die "the idle holder exited"
  (($(date +%s) - opening < idle / rate + 60)) || die "the idle connections were not all attempted in time"
  sleep 0.2
done
opened_in=$(($(date +%s) - opening))
sleep 1
probes=("$(healthz)")
held_start=$(holder_status)
wrk_result "$SERVE_URL" "$threads" "$conns" "$seconds" >"$scratch/beside.txt" &
beside_pid=$!
sleep "$(awk -v s="$seconds" 'BEGIN { print s / 2 }')"
probes+=("$(healthz)")
wait "$beside_pid" || die "wrk beside the idle connections printed no result"
beside=$(cat "$scratch/beside.txt")
held_end=$(holder_status)
probes+=("$(healthz)")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
kill -TERM "$holder"
wait "$holder" 2>/dev/null || true
stop_serve_local

failed=0
for line in "$warm" "$alone" "$beside"; do
  [ "$(field "$line" non2xx)" = 0 ] && [ "$(field "$line" socket_errors)" = 0 ] || failed=1
done
answered=0
for line in "$warm" "$alone" "$beside"; do answered=$((answered + $(field "$line" requests))); done
metering="every one wrk saw answered ($answered, + up to $((3 * conns)) in flight when wrk stopped)"
metered=$(check_metering "$answered" $((answered + 3 * conns))) || {
  metering="NOT $metering: FAILED"
  failed=1
}

echo
echo "### serve-local holding $idle idle connections (no token, a partial request head each)"
echo
echo "machine: $(nproc) cores; load average before $load_before, after $load_after; wrk -t $threads -c $conns," \
  "$seconds s per line after ${WARMUP} s warm-up; idle connections from $sources source address(es)," \
  "$rate a second (all attempted in ${opened_in} s); serve-local config: $(tr '\n' ' ' <<<"$config")"
echo
python3 - "$idle" "$conns" "$alone" "$beside" "$held_start" "$held_end" "${probes[@]}" <<'EOF' || failed=1
import sys
idle, conns = int(sys.argv[1]), sys.argv[2]
alone, beside, start, end = (dict(kv.split("=") for kv in a.split() if "=" in kv) for a in sys.argv[3:7])
probes = [p.split() for p in sys.argv[7:10]]
print("| wrk through serve-local | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors |")
print("|---|---|---|---|---|---|---|")
for name, r in (("without idle connections", alone), (f"beside {end['held']} held idle connections", beside)):
    print(f"| {name} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['non2xx']} |"
          f" {r['socket_errors']} |")
print()
for when, s in (("when wrk started", start), ("when wrk ended", end)):
    print(f"- idle connections {when}: {s['held']} held of {idle} ({s['opened']} opened, {s['failed']} failed to"
          f" connect, {s['closed']} closed by serve-local, {s['answered']} of those answered first)")
answered = [p for p in probes if p[0] == "200"]
times = ", ".join(f"{p[0]} in {float(p[1]) * 1000:.1f} ms" for p in probes)
print(f"- /healthz while they were held (before, during, after the wrk run): {times}")
# RESULT lines for bench/summarize.py, which holds the goals.
a, b = float(alone["p99_ms"]), float(beside["p99_ms"])
print(f'RESULT idle.p99 {b - a:.3f} ms "p99 {b:.3f} ms beside {end["held"]} held idle connections"'
      f' "p99 {a:.3f} ms without them (wrk -t 2 -c {conns})"')
print(f'RESULT idle.held {end["held"]} connections "{end["held"]} of {idle} held when wrk ended'
      f' ({start["held"]} when it started)" "-"')
print(f'RESULT idle.healthz {100 * len(answered) / len(probes):.0f} % "{len(answered)} of {len(probes)} answered'
      f' with {end["held"]} held: {times}" "-"')
sys.exit(0 if len(answered) == len(probes) else 1)
EOF
echo "- serve-local metered ${metered:-?} requests, $metering, 42 output tokens each"
[ "$failed" = 0 ] || die "some requests failed (non-2xx, socket errors, /healthz or the ledger; see above)"
