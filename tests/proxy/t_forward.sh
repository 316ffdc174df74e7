#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A valid token gets the upstream's answer; upstream sees our API key, never
# the JWT; anthropic-* headers, query and body arrive byte for byte;
# request-id is relayed, org-wide ratelimit headers are not; the ledger
# holds the upstream's usage.
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub alice --plan pro)
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"

BODYFILE=$SCRATCH/req.json
printf '{"model":"claude-haiku-4-5", "max_tokens":100,\n "messages":[{"role":"user","content":"h\\u00e9llo \xc3\xa9"}]}' >"$BODYFILE"
call "$BASE/v1/messages?beta=true" -H "Authorization: Bearer $TOKEN" -H "anthropic-version: 2023-06-01" \
  -H "anthropic-beta: tools-2024-05-16,other" -H "content-type: application/json" -H "x-custom: dropped" \
  --data-binary @"$BODYFILE"
expect_status 200
[ "$(json_get "$BODY" 'd["content"][0]["text"]')" = "hello from the fake upstream" ] || fail "body: $BODY"
[ "$(header request-id)" = req_upstream_123 ] || fail "request-id not relayed: $HEADERS"
expect_not_contains "$HEADERS" "anthropic-ratelimit"
[ "$(header anthropic-organization-id)" = org-fake ] || fail "other anthropic-* headers are relayed: $HEADERS"
[ "$(header x-claudegate-quota-limit)" = 500000 ] || fail "quota headers: $HEADERS"
[ -n "$(header x-claudegate-quota-remaining)" ] || fail "quota remaining: $HEADERS"

REC=$(head -1 "$RECORD")
"$PY" - "$REC" "$BODYFILE" "$TOKEN" <<'PYEOF' || fail "forwarded request differs: $REC"
import json, sys
rec = json.loads(sys.argv[1]); sent = open(sys.argv[2], "rb").read(); token = sys.argv[3]
h = {k.lower(): v for k, v in rec["headers"]}
assert rec["target"] == "/v1/messages?beta=true", rec["target"]
assert rec["body"].encode("latin-1") == sent, "body not byte for byte"
assert h["x-api-key"] == "sk-ant-server-key", h
assert "authorization" not in h, h
assert token not in json.dumps(rec), "the JWT reached upstream"
assert h["anthropic-version"] == "2023-06-01" and h["anthropic-beta"] == "tools-2024-05-16,other", h
assert "x-custom" not in h and h["content-type"] == "application/json", h  # an allowlist is forwarded
for name in ("remote_addr", "local_addr", "connection"):
    assert name not in h or name == "connection" and h[name].lower() == "keep-alive", (name, h)
# The gateway's own: usage is read from the body, so it must come unencoded.
assert h.get("accept-encoding") == "identity", h
PYEOF

# x-api-key carrying the JWT works the same way, and upstream still sees only our key.
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 200
expect_not_contains "$(cat "$RECORD")" "$TOKEN"

# The ledger: two rows with the upstream's usage, request ids, not streamed.
[ "$(ledger "select count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens) from usage_ledger where subject='alice' and status=200 and stream=0")" = "2|24|68|10|4" ] \
  || fail "ledger: $(ledger 'select * from usage_ledger')"
[ "$(ledger "select request_id from usage_ledger limit 1")" = req_upstream_123 ] || fail "ledger request id"

# count_tokens is forwarded but never charged; models are filtered to the plan.
call "$BASE/v1/messages/count_tokens" -H "x-api-key: $TOKEN" -d '{"model":"claude-haiku-4-5","messages":[]}'
expect_status 200
[ "$(json_get "$BODY" 'd["input_tokens"]')" = 42 ] || fail "count_tokens: $BODY"
[ "$(ledger 'select count(*) from usage_ledger')" = 2 ] || fail "count_tokens was charged"
call "$BASE/v1/models" -H "x-api-key: $TOKEN"
expect_status 200
[ "$(json_get "$BODY" '[m["id"] for m in d["data"]]')" = "['claude-haiku-4-5', 'claude-sonnet-4-5']" ] || fail "models: $BODY"
call "$BASE/v1/models/claude-opus-4-1" -H "x-api-key: $TOKEN"
expect_status 404
expect_envelope not_found_error
call "$BASE/v1/models/claude-sonnet-4-5" -H "x-api-key: $TOKEN"
expect_status 200

# The log names the request but never a token or key.
stop_server
wait_log '"request_id":"req_upstream_123"'
expect_not_contains "$(cat "$SERVER_LOG")" "$TOKEN"
expect_not_contains "$(cat "$SERVER_LOG")" "sk-ant-server-key"
pass
