#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# SIGTERM during a stream: the server stops accepting, lets the stream
# finish, meters it and exits 0; its usage is in the ledger afterwards.
# store-backends: sqlite postgresql
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub frank --plan pro)
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
SMSG='{"model":"claude-haiku-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"Hi"}]}'

curl -s -N --max-time 30 "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$SMSG" >"$SCRATCH/stream" &
client=$!
sleep 1
kill -TERM "$SERVER_PID"
sleep 0.3
# No new connections once stopping.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/healthz" || true)
[ "$code" = 000 ] || fail "still accepting after SIGTERM (HTTP $code)"
wait "$client" || fail "the stream in flight was cut"
expect_contains "$(cat "$SCRATCH/stream")" "message_stop"
stop_server
[ "$(ledger "select input_tokens, output_tokens, CAST(stream AS INTEGER) from usage_ledger where subject='frank'")" = "25|17|1" ] \
  || fail "ledger after SIGTERM: $(ledger 'select * from usage_ledger')"
expect_contains "$(cat "$SERVER_LOG")" "drained"
pass
