#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# store-backends: postgresql
# Two serve-local replicas on one PostgreSQL under load, one killed with -9:
# the other keeps serving; every 200 the killed one sent at least 50 ms
# before the kill is in the ledger; and its leases stop counting at their
# expiry (k_lease_ttl = 30 s after their last extension: checked on the
# lease rows' expires_at rather than by waiting) (issue #17 faults).
source "$(dirname "$0")/../proxy/proxy_common.sh"
need_postgres

"$CG" keygen >/dev/null
write_team_plan # a limited plan: its reservations come from a lease
TOKEN=$("$CG" issue --sub kira --plan team)
start_replicas 2 --mock-upstream
KILLED=${REPLICA_PIDS[0]}

"$PY" - "$KILLED" "$TOKEN" "$MSG" "$SCRATCH/settled" "${REPLICA_BASES[@]}" <<'PY' || fail "see above"
import http.client, os, signal, sys, threading, time, urllib.parse
pid, token, body, settled_file, bases = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), sys.argv[4], sys.argv[5:]
lock, stop = threading.Lock(), threading.Event()
done = {base: [] for base in bases}  # (finished, status, request-id)

def client(base):
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    while not stop.is_set():
        try:
            conn.request("POST", "/v1/messages", body, {"x-api-key": token, "content-type": "application/json"})
            res = conn.getresponse()
            res.read()
        except Exception:
            if base == bases[0]:
                return  # the killed replica is gone
            raise
        with lock:
            done[base].append((time.monotonic(), res.status, res.getheader("request-id")))

threads = [threading.Thread(target=client, args=(base,)) for base in bases for _ in range(4)]
for t in threads:
    t.start()
time.sleep(1.0)
killed = time.monotonic()
os.kill(pid, signal.SIGKILL)
time.sleep(1.0)  # the survivor keeps serving meanwhile
stop.set()
for t in threads:
    t.join()
victim, survivor = done[bases[0]], done[bases[1]]
settled = [rid for at, status, rid in victim if status == 200 and at <= killed - 0.05]
after = [status for at, status, _ in survivor if at > killed + 0.05]
print("killed replica: %d 200s >= 50 ms before the kill; survivor after the kill: %d answers, %d 200"
      % (len(settled), len(after), after.count(200)))
if len(settled) < 20:
    print("FAIL: only %d requests completed before the kill; the load is too light to test" % len(settled))
    sys.exit(1)
if any(status != 200 for _, status, _ in survivor):
    print("FAIL: the survivor answered other than 200: %s" % sorted({s for _, s, _ in survivor}))
    sys.exit(1)
if len(after) < 20:
    print("FAIL: the survivor answered only %d requests in the second after the kill" % len(after))
    sys.exit(1)
with open(settled_file, "w") as f:
    f.write("\n".join(settled) + "\n")
PY
killed_at=$(date +%s)

SERVER_PID=${REPLICA_PIDS[1]} stop_server # the survivor returns its leases

# The killed replica's leases stay until they expire, or until a process that
# can tell their owner is dead (one on the same host) drops them: either way
# each stops counting at most k_lease_ttl (30 s) after the kill.
owner_like="%|$KILLED|%"
leases=$(ledger "select count(*) from quota_leases where owner like '$owner_like'")
latest=$(ledger "select coalesce(max(expires_at), $killed_at) from quota_leases where owner like '$owner_like'")
live_after=$(ledger "select count(*) from quota_leases where owner like '$owner_like' and expires_at > $((killed_at + 31))")
echo "the killed replica's leases left: $leases, the latest expiring $((latest - killed_at)) s after the kill"
[ "$live_after" = 0 ] || fail "a lease of the killed replica outlives k_lease_ttl: $(ledger 'select * from quota_leases')"
[ "$(ledger "select count(*) from quota_leases where owner not like '$owner_like'")" = 0 ] \
  || fail "the survivor left leases after SIGTERM: $(ledger 'select * from quota_leases')"

# The victim's rows were written behind (group commits) before it died.
ledger "select request_id from usage_ledger where subject = 'kira'" | sort >"$SCRATCH/stored"
sort "$SCRATCH/settled" | sed '/^$/d' >"$SCRATCH/settled_sorted"
missing=$(comm -23 "$SCRATCH/settled_sorted" "$SCRATCH/stored" | wc -l)
echo "the killed replica's 200s >= 50 ms before the kill: $(wc -l <"$SCRATCH/settled_sorted"), missing from the ledger: $missing"
[ "$missing" = 0 ] || fail "$missing requests answered before kill -9 are missing from the ledger"
pass
