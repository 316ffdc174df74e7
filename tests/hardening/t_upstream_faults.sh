#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# An upstream that misbehaves in ways tests/proxy/t_upstream_errors.sh does
# not cover (that one: refused connection, slow answer): non-HTTP bytes, an
# HTML 502, a body cut short, truncated JSON, a reset or a stall mid-stream.
# Each ends in a 5xx envelope (or, mid-stream, an SSE error event), one
# ledger row with the usage seen, no reservation left, and the server serving on.
source "$(dirname "$0")/../proxy/proxy_common.sh"

printf '[serve]\nupstream_timeout = "3s"\n' >"$SCRATCH/claudegate.toml"
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub jack --plan pro)
RECORD=$SCRATCH/faults.log
"$PY" "$(dirname "$0")/fault_upstream.py" "$SCRATCH/upstream.port" "$RECORD" &
PIDS+=($!)
disown $!
wait_file "$SCRATCH/upstream.port"
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "http://127.0.0.1:$(cat "$SCRATCH/upstream.port")"
SMSG='{"model":"claude-haiku-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"Hi"}]}'

# The last ledger row as status|input|output|cache_read|cache_write|stream.
last_row() {
  ledger "select status, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, stream
          from usage_ledger order by id desc limit 1"
}

# Fault $1 on a plain request: the status ($2) and the last ledger row ($3).
plain_fault() {
  call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -H "anthropic-fault: $1" -d "$MSG"
  expect_status "$2"
  [ "$(last_row)" = "$3" ] || fail "$1: ledger row $(last_row), want $3"
}

plain_fault garbage 502 "502|0|0|0|0|0"
expect_envelope api_error
expect_contains "$BODY" "upstream request failed"

plain_fault short-body 502 "502|0|0|0|0|0"
expect_envelope api_error

# An upstream's own error page is relayed as sent (DESIGN.md §5: status and body unchanged).
plain_fault html502 502 "502|0|0|0|0|0"
expect_contains "$BODY" "<h1>502 Bad Gateway</h1>"
[ "$(header request-id)" = req_fault_upstream ] || fail "upstream request-id not relayed: $HEADERS"

# A complete 200 whose JSON is cut: relayed, and charged its reservation
# (input estimate + max_tokens) as an estimate, since no usage is readable.
plain_fault bad-json 200 "200|10|100|0|0|0"
[ "$(ledger 'select estimated from usage_ledger order by id desc limit 1')" = 1 ] || fail "bad-json: not marked estimated"

# Fault $1 mid-stream: the events the client got, in $EVENTS, and the error event's data in $ERROR_DATA.
stream_fault() {
  call -N "$BASE/v1/messages" -H "x-api-key: $TOKEN" -H "anthropic-fault: $1" -d "$SMSG"
  expect_status 200
  EVENTS=$(echo "$BODY" | sed -n 's/^event: //p' | paste -sd, -)
  ERROR_DATA=$(echo "$BODY" | grep -A1 '^event: error' | sed -n 's/^data: //p')
  [ "$(last_row)" = "200|25|5|7|3|1" ] || fail "$1: usage seen so far not metered: $(last_row)"
}

stream_fault reset-stream
[ "$EVENTS" = "message_start,message_delta,error" ] || fail "reset: events $EVENTS"
[ "$(json_get "$ERROR_DATA" 'd["error"]["type"]')" = api_error ] || fail "reset: $ERROR_DATA"
expect_contains "$ERROR_DATA" "retry the request"

stream_fault stall-stream
[ "$EVENTS" = "message_start,message_delta,error" ] || fail "stall: events $EVENTS"
[ "$(json_get "$ERROR_DATA" 'd["error"]["type"]')" = timeout_error ] || fail "stall: $ERROR_DATA"

# Each fault reached the upstream exactly once (no silent retry), nothing is
# still reserved, and the server answers the next request normally.
[ "$(paste -sd, "$RECORD")" = "garbage,short-body,html502,bad-json,reset-stream,stall-stream" ] \
  || fail "upstream saw: $(paste -sd, "$RECORD")"
[ "$(ledger 'select count(*) from quota_reservations')" = 0 ] || fail "reservations left behind"
plain_fault ok 200 "200|12|34|0|0|0"
expect_contains "$BODY" '"text": "fine"'
[ "$(ledger 'select count(*) from usage_ledger')" = 7 ] || fail "ledger: $(ledger 'select * from usage_ledger')"
pass
