#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A 200 whose body has no readable usage (not JSON, or still encoded) is
# charged its reservation and marked estimated, never 0; the gateway asks
# the upstream for an unencoded body, so usage can be read.
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub wes --plan pro)
start_metering_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
ask() {
  call "$BASE/v1/messages" -H "x-api-key: $TOKEN" "$@" \
    -d '{"model":"claude-haiku-4-5","max_tokens":2000,"messages":[{"role":"user","content":"Hi"}]}'
  expect_status 200
}
row() { ledger "select input_tokens + output_tokens, estimated from usage_ledger order by id desc limit 1"; }

ask -H "anthropic-fake-mode: text"
[ "$BODY" = "ok, but not JSON" ] || fail "the body was not relayed as is: $BODY"
IFS='|' read -r charged estimated <<<"$(row)"
[ "$estimated" = 1 ] && [ "$charged" -ge 2000 ] || fail "a 200 without usage was charged $charged (estimated $estimated)"

# Asked for identity, the upstream answers unencoded JSON and the exact usage is charged.
ask -H "anthropic-fake-mode: gzip"
[ "$(tail -1 "$RECORD" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["headers"].get("accept-encoding"))')" = identity ] \
  || fail "the upstream was not asked for identity encoding: $(tail -1 "$RECORD")"
[ "$(row)" = "29|0" ] || fail "exact usage expected: $(row)"
stop_server
pass
