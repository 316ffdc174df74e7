#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 under load: the ledger is written behind the request path, yet
# every request whose 200 completed at least 50 ms before the kill is in it
# (matched by request-id), so usage is never lost to a crash for longer than
# the write-behind delay (issue #16 target 8).
source "$(dirname "$0")/../proxy/proxy_common.sh"

"$CG" keygen >/dev/null
write_team_plan # a limited plan: its reservations come from a lease
TOKEN=$("$CG" issue --sub kurt --plan team)
start_server --mock-upstream

"$PY" - "$BASE" "$TOKEN" "$MSG" "$SERVER_PID" "$CLAUDEGATE_HOME/claudegate.db" <<'EOF' || fail "see above"
import http.client, os, signal, sqlite3, sys, threading, time, urllib.parse
base, token, body, pid, db = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4]), sys.argv[5]
url = urllib.parse.urlparse(base)
done, lock, stop = [], threading.Lock(), threading.Event()

def client():
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    while not stop.is_set():
        try:
            conn.request("POST", "/v1/messages", body, {"x-api-key": token, "content-type": "application/json"})
            res = conn.getresponse()
            res.read()
            finished = time.monotonic()
        except Exception:
            return  # the server is gone
        if res.status == 200:
            with lock:
                done.append((finished, res.getheader("request-id")))

threads = [threading.Thread(target=client) for _ in range(8)]
for t in threads:
    t.start()
time.sleep(1.0)
killed = time.monotonic()
os.kill(pid, signal.SIGKILL)
stop.set()
for t in threads:
    t.join()
settled = [rid for finished, rid in done if finished <= killed - 0.05]
if len(settled) < 50:
    print("FAIL: only %d requests completed before the kill; the load is too light to test" % len(settled))
    sys.exit(1)
if any(not rid for rid in settled):
    print("FAIL: a 200 without a request-id header")
    sys.exit(1)
con = sqlite3.connect(db)
stored = {row[0] for row in con.execute("select request_id from usage_ledger where subject = 'kurt'")}
missing = [rid for rid in settled if rid not in stored]
late = [rid for finished, rid in done if finished > killed - 0.05]
print("completed >= 50 ms before the kill: %d, missing from the ledger: %d (within 50 ms: %d)"
      % (len(settled), len(missing), len(late)))
if missing:
    print("FAIL: completed requests missing from the ledger after kill -9: %s" % missing[:5])
    sys.exit(1)
EOF
pass
