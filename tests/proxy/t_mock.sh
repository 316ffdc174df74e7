#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# --mock-upstream needs no API key and meters like the real thing; without
# it and without a key serve-local refuses to start (exit 2); a non-loopback
# --listen needs --allow-remote; the body limit answers 413 in the envelope.
# store-backends: sqlite postgresql
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub ivy --plan free)
unset ANTHROPIC_API_KEY
expect_exit 2 "$CG" serve-local --listen 127.0.0.1:0
expect_contains "$ERR" "ANTHROPIC_API_KEY"
expect_exit 2 "$CG" serve-local --mock-upstream --listen 0.0.0.0:0
expect_contains "$ERR" "--allow-remote"

start_server --mock-upstream --body-limit 4096
expect_contains "$(head -1 "$SERVER_LOG")" "(upstream: mock)"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 200
expect_contains "$(header request-id)" "req_"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" \
  -d '{"model":"claude-haiku-4-5","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"Hi"}]}'
expect_status 200
expect_contains "$BODY" "event: message_stop"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "{\"pad\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"}"
expect_status 413
expect_envelope request_too_large
stop_server
[ "$(ledger "select count(*), sum(CAST(stream AS INTEGER)), CASE WHEN min(input_tokens) > 0 THEN 1 END, CASE WHEN min(output_tokens) > 0 THEN 1 END from usage_ledger where subject='ivy'")" = "2|1|1|1" ] \
  || fail "mock requests not metered: $(ledger 'select * from usage_ledger')"
expect_exit 0 "$CG" usage-report --by sub --format json
expect_contains "$OUT" '"ivy"'
pass
