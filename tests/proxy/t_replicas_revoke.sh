#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# store-backends: postgresql
# Three serve-local replicas on one PostgreSQL, a token in use on each (its
# verification cached), then `revoke --sub` from a shell: every replica
# refuses the token (401) within 1 s of revoke's exit, pushed by
# LISTEN/NOTIFY or found by the epoch poll (issue #17 target: revocations
# reach every replica within 1 s). Prints the measured figure.
source "$(dirname "$0")/proxy_common.sh"
need_postgres

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub vera --plan admin)
start_replicas 3 --mock-upstream

# Each replica polled every 5 ms on its own keep-alive connection from before
# the revocation until it answers 401; the figure is the time from revoke's
# exit to the last replica's first 401.
"$PY" - "$CG" "$TOKEN" "$MSG" "${REPLICA_BASES[@]}" <<'PY' || fail "see above"
import http.client, json, subprocess, sys, threading, time, urllib.parse
cg, token, body, bases = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4:]
first_401 = {}
statuses = {base: [] for base in bases}
warm = threading.Barrier(len(bases) + 1)
give_up = threading.Event()

def ask(conn):
    conn.request("POST", "/v1/messages", body, {"x-api-key": token, "content-type": "application/json"})
    res = conn.getresponse()
    return res.status, res.read()

def poll(base):
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    status, reply = ask(conn)  # the cache is warm: the token was verified here
    statuses[base].append(status)
    warm.wait()
    while not give_up.is_set():
        status, reply = ask(conn)
        statuses[base].append(status)
        if status == 401:
            first_401[base] = (time.monotonic(), reply)
            return
        if status != 200:
            print("FAIL: %s answered %d before the 401: %s" % (base, status, reply[:300]))
            return
        time.sleep(0.005)

threads = [threading.Thread(target=poll, args=(base,)) for base in bases]
for t in threads:
    t.start()
warm.wait()
if any(s[0] != 200 for s in statuses.values()):
    print("FAIL: the token was not accepted before the revocation: %s" % statuses)
    give_up.set()
    sys.exit(1)
time.sleep(0.2)  # a few cached answers on each replica first
done = subprocess.run([cg, "revoke", "--sub", "vera", "--reason", "replicas test"], capture_output=True, text=True)
revoked = time.monotonic()
if done.returncode != 0:
    give_up.set()
    print("FAIL: revoke --sub exited %d: %s" % (done.returncode, done.stderr))
    sys.exit(1)
deadline = revoked + 5
for t in threads:
    t.join(max(0.0, deadline - time.monotonic()))
give_up.set()
for t in threads:
    t.join()
missing = [base for base in bases if base not in first_401]
if missing:
    print("FAIL: still no 401 from %s 5 s after revoke exited" % missing)
    sys.exit(1)
for base, (_, reply) in first_401.items():
    error = json.loads(reply).get("error", {})
    if error.get("type") != "authentication_error":
        print("FAIL: %s: the 401 is not an authentication_error envelope: %s" % (base, reply[:300]))
        sys.exit(1)
delays = sorted(max(0.0, at - revoked) * 1000 for at, _ in first_401.values())
print("revoke --sub → 401 on every replica: %.1f ms (each: %s; polled every 5 ms, %d requests)"
      % (delays[-1], ", ".join("%.1f" % d for d in delays), sum(len(s) for s in statuses.values())))
if delays[-1] > 1000:
    print("FAIL: a replica kept accepting the revoked token for %.0f ms after revoke exited (goal: 1 s)" % delays[-1])
    sys.exit(1)
PY
pass
