#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A stream whose final usage never arrives (the client cut it after reading
# the deltas, or the upstream died) is charged at least a token per 4 bytes
# of generated text relayed, never message_start's 1 output token, and its ledger
# row is marked estimated (usage-report --format json shows it). A stream
# that ends normally is charged exactly what the API reported.
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub carl --plan pro)
start_metering_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
STREAM='{"model":"claude-haiku-4-5","max_tokens":4000,"stream":true,"messages":[{"role":"user","content":"Hi"}]}'
output_of() { ledger "select output_tokens || ' ' || estimated from usage_ledger where request_id='$1'"; }
# A whole stream: exactly the final message_delta's 40 × 4 = 160, not estimated.
curl -sN --max-time 20 "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$STREAM" >"$SCRATCH/whole"
expect_contains "$(cat "$SCRATCH/whole")" "message_stop"
wait_rows 1
[ "$(output_of req_metering)" = "160 0" ] || fail "whole stream: $(ledger 'select * from usage_ledger')"
ledger "delete from usage_ledger"

# The client reads 30 of 200 deltas (18 bytes of text each) and leaves.
"$PY" - "$BASE" "$TOKEN" "$STREAM" <<'PYEOF'
import socket, sys, urllib.parse
base, token, body = sys.argv[1], sys.argv[2], sys.argv[3]
url = urllib.parse.urlparse(base)
s = socket.create_connection((url.hostname, url.port))
s.sendall((f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: {token}\r\nanthropic-fake-deltas: 200\r\n"
           f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n{body}").encode())
seen = b""
while seen.count(b"content_block_delta") < 60:  # "event:" and "type" name each delta
    chunk = s.recv(65536)
    if not chunk:
        sys.exit("stream ended early")
    seen += chunk
s.close()
PYEOF
wait_rows 1
read -r out estimated <<<"$(output_of req_metering)"
[ "$estimated" = 1 ] || fail "a cut stream was not marked estimated: $(ledger 'select * from usage_ledger')"
# 30 deltas of 18 bytes relayed → at least 135 tokens; message_start said 1.
[ "$out" -ge 135 ] || fail "a cut stream was charged only $out output tokens"
"$CG" usage-report --format json --sub carl >"$SCRATCH/report.json"
[ "$(json_get "$(cat "$SCRATCH/report.json")" 'd["totals"]["estimated_requests"]')" = 1 ] \
  || fail "usage-report does not show the estimated row: $(cat "$SCRATCH/report.json")"
ledger "delete from usage_ledger"

# The upstream dies after 20 deltas: the client gets an error event, and the row is estimated too.
curl -sN --max-time 20 "$BASE/v1/messages" -H "x-api-key: $TOKEN" -H "anthropic-fake-mode: die" -H "anthropic-fake-deltas: 20" \
  -d "$STREAM" >"$SCRATCH/died"
expect_contains "$(cat "$SCRATCH/died")" "event: error"
wait_rows 1
read -r out estimated <<<"$(output_of req_metering)"
[ "$estimated" = 1 ] && [ "$out" -ge 90 ] || fail "an upstream that died: $(ledger 'select * from usage_ledger')"
grep -q '"estimated":true' "$SERVER_LOG" || fail "the request log does not say estimated"
stop_server
pass
