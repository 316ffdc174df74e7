#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Streaming: events arrive one by one (the first long before upstream
# finishes), the ledger holds exactly the upstream's usage (output = the
# last running total), and a client that hangs up is still charged.
# store-backends: sqlite postgresql
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub dana --plan pro)
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
SMSG='{"model":"claude-haiku-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"Hi"}]}'

# Read the stream with timestamps: first event time, total time, event names.
"$PY" - "$BASE" "$TOKEN" "$SMSG" >"$SCRATCH/timing" <<'PYEOF'
import http.client, sys, time, urllib.parse
base, token, body = sys.argv[1:4]
u = urllib.parse.urlparse(base)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
start = time.monotonic()
c.request("POST", "/v1/messages", body=body, headers={"x-api-key": token, "content-type": "application/json"})
r = c.getresponse()
assert r.status == 200, r.status
assert r.getheader("content-type").startswith("text/event-stream"), r.getheader("content-type")
assert r.getheader("request-id") == "req_upstream_stream", r.getheader("request-id")
first, events = None, []
while True:
    line = r.readline()
    if not line:
        break
    if line.startswith(b"event:"):
        first = first or time.monotonic() - start
        events.append(line.split(b":", 1)[1].strip().decode())
print(f"{first:.2f} {time.monotonic() - start:.2f} {','.join(events)}")
PYEOF
read -r first total events <"$SCRATCH/timing"
"$PY" -c "import sys; sys.exit(0 if $first < 1.0 and $total - $first > 2.0 else 1)" \
  || fail "events were buffered: first after ${first}s of ${total}s"
expect_contains "$events" "message_start,ping,content_block_start"
expect_contains "$events" "message_delta,message_stop"
[ "$(ledger "select input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, CAST(stream AS INTEGER), request_id from usage_ledger")" = "25|17|7|3|1|req_upstream_stream" ] \
  || fail "ledger: $(ledger 'select * from usage_ledger')"

# Hang up after about a second: usage so far is still metered (input 25, at least 1 output).
curl -s -N --max-time 1.2 "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$SMSG" >/dev/null || true
for ((i = 0; i < 80; i++)); do
  [ "$(ledger 'select count(*) from usage_ledger')" = 2 ] && break
  sleep 0.1
done
[ "$(ledger "select input_tokens, cache_read_tokens, cache_write_tokens from usage_ledger where id = 2")" = "25|7|3" ] \
  || fail "a client that left was not charged: $(ledger 'select * from usage_ledger')"
[ "$(ledger "select CASE WHEN output_tokens < 17 THEN 1 END from usage_ledger where id = 2")" = 1 ] || fail "charged beyond what was produced"
wait_log '"client_gone":true'

# Hang up while the upstream is idle (8 s between events): the upstream
# connection is shut down at once, so the row is written within a few
# seconds, not when the next event would have come.
curl -s -N --max-time 1.2 "$BASE/v1/messages" -H "x-api-key: $TOKEN" -H "anthropic-fake-event-delay: 8" \
  -d "$SMSG" >/dev/null || true
for ((i = 0; i < 40; i++)); do
  [ "$(ledger 'select count(*) from usage_ledger')" = 3 ] && break
  sleep 0.1
done
[ "$(ledger "select input_tokens from usage_ledger where id = 3")" = 25 ] \
  || fail "upstream kept running after the client left: $(ledger 'select * from usage_ledger')"
pass
