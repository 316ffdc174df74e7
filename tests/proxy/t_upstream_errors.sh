#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Upstream failures in Anthropic's envelope: unreachable → 502 api_error,
# too slow → 504 timeout_error; both metered with no tokens, reservation released.
source "$(dirname "$0")/proxy_common.sh"

printf '[serve]\nupstream_timeout = "1s"\n' >"$SCRATCH/claudegate.toml"
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub jack --plan pro)
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -H "anthropic-fake-sleep: 3" -d "$MSG"
expect_status 504
expect_envelope timeout_error
stop_server

# A port nobody listens on.
DEAD=1 # nothing listens on port 1: connection refused
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "http://127.0.0.1:$DEAD"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 502
expect_envelope api_error
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" \
  -d '{"model":"claude-haiku-4-5","max_tokens":10,"stream":true,"messages":[]}'
expect_status 502
expect_envelope api_error
stop_server
[ "$(ledger "select group_concat(status || ':' || (input_tokens + output_tokens), ',') from usage_ledger")" = "504:0,502:0,502:0" ] \
  || fail "ledger: $(ledger 'select * from usage_ledger')"
[ "$(ledger "select count(*) from quota_reservations")" = 0 ] || fail "reservations left behind"
pass
