#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# store-backends: postgresql
# PostgreSQL stopped and started again under load on a serve-local replica
# (a throwaway cluster of the test's own, so it can be restarted): while the
# server is down, requests whose checks need the store get 503 api_error in
# Anthropic's envelope — never a 200 for a token whose revocation state was
# not checked (a token the replica never saw is refused); every 200 ends up
# in the ledger once the server is back (the write-behind queue retries);
# and service resumes within 5 s of the server coming back (issue #17 faults).
source "$(dirname "$0")/../proxy/proxy_common.sh"
need_postgres
start_pg_cluster

"$CG" keygen >/dev/null
write_team_plan # a limited plan: its reservations come from a lease
TOKEN=$("$CG" issue --sub ruth --plan team)
UNSEEN=$("$CG" issue --sub ruth --plan team) # first presented while the server is down
start_server --mock-upstream

"$PY" - "$BASE" "$TOKEN" "$UNSEEN" "$MSG" "$SCRATCH/ok_ids" "$PG_CTL" "$PG_CLUSTER" <<'PY' || fail "see above"
import http.client, json, os, subprocess, sys, threading, time, urllib.parse
base, token, unseen, body, ok_ids, pg_ctl, cluster = sys.argv[1:8]
body = body.encode()
url = urllib.parse.urlparse(base)
lock, stop = threading.Lock(), threading.Event()
answers = []  # (finished, status, request-id, body)

def pg_ctl_do(*args):
    cmd = [pg_ctl, "-D", cluster + "/data", "-w", "-t", "30", *args]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def ask(conn, key):
    conn.request("POST", "/v1/messages", body, {"x-api-key": key, "content-type": "application/json"})
    res = conn.getresponse()
    return res.status, res.getheader("request-id"), res.read()

def client():
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
    while not stop.is_set():
        try:
            status, rid, reply = ask(conn, token)
        except Exception as e:
            conn.close()
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
            status, rid, reply = "error:%s" % e, None, b""
        with lock:
            answers.append((time.monotonic(), status, rid, reply))
        time.sleep(0.005)

def once(key):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
    try:
        return ask(conn, key)
    finally:
        conn.close()

def envelope_error_type(reply):
    try:
        d = json.loads(reply)
        return d["error"]["type"] if d.get("type") == "error" else None
    except Exception:
        return None

threads = [threading.Thread(target=client) for _ in range(4)]
for t in threads:
    t.start()
time.sleep(1.0)
pg_ctl_do("-m", "fast", "stop")
down = time.monotonic()
time.sleep(1.5)  # longer than a cached verification may be trusted (1 s)
status, _, reply = once(unseen)
unseen_status = status
if status != 503 or envelope_error_type(reply) != "api_error":
    stop.set()
    print("FAIL: a token never seen before, presented while PostgreSQL is down, got %s: %s"
          % (status, reply[:300]))
    sys.exit(1)
time.sleep(0.5)
pg_ctl_do("-m", "fast", "-l", cluster + "/server.log", "restart")  # starts it again with the same options
up = time.monotonic()
resumed = None
while time.monotonic() < up + 10:
    status, _, reply = once(unseen)
    if status == 200:
        resumed = time.monotonic()
        break
    time.sleep(0.02)
time.sleep(0.5)
stop.set()
for t in threads:
    t.join()

bad = [(s, r[:200]) for _, s, _, r in answers if s != 200 and not (s == 503 and envelope_error_type(r) == "api_error")]
ok = [rid for _, s, rid, _ in answers if s == 200]
during = [s for at, s, _, _ in answers if down + 1.2 < at < up]
unavailable = sum(1 for _, s, _, _ in answers if s == 503)
print("load: %d answers, %d 200, %d 503 api_error; while down (after the 1 s cache): %d answers, %d 200"
      % (len(answers), len(ok), unavailable, len(during), during.count(200)))
if bad:
    print("FAIL: answers other than 200 or 503 api_error: %s" % bad[:5])
    sys.exit(1)
if during.count(200):
    print("FAIL: %d requests got 200 more than 1 s into the outage (a verification not checked against the store)"
          % during.count(200))
    sys.exit(1)
if not during:
    print("FAIL: no request was answered while PostgreSQL was down (the load is too light to test)")
    sys.exit(1)
if resumed is None:
    print("FAIL: no 200 within 10 s of PostgreSQL coming back")
    sys.exit(1)
print("PostgreSQL down %.1f s; service resumed %.0f ms after it was back" % (up - down, (resumed - up) * 1000))
if resumed - up > 5:
    print("FAIL: service resumed %.1f s after PostgreSQL came back (goal: 5 s)" % (resumed - up))
    sys.exit(1)
if any(not rid for rid in ok):
    print("FAIL: a 200 without a request-id header")
    sys.exit(1)
with open(ok_ids, "w") as f:
    f.write("\n".join(ok) + "\n")
PY

# SIGTERM drains the write-behind queue: every 200 (the load's) is in the ledger.
stop_server
ledger "select request_id from usage_ledger where subject = 'ruth'" | sort >"$SCRATCH/stored_ids"
sort "$SCRATCH/ok_ids" | sed '/^$/d' >"$SCRATCH/ok_sorted"
missing=$(comm -23 "$SCRATCH/ok_sorted" "$SCRATCH/stored_ids" | wc -l)
echo "200s: $(wc -l <"$SCRATCH/ok_sorted"), ledger rows: $(wc -l <"$SCRATCH/stored_ids"), 200s missing from the ledger: $missing"
[ "$missing" = 0 ] || fail "$missing answered requests are not in the ledger: $(comm -23 "$SCRATCH/ok_sorted" "$SCRATCH/stored_ids" | head -3 | tr '\n' ' ')"
pass
