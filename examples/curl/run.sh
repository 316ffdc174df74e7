#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# curl through serve-local: a plain and a streaming Messages call, count_tokens,
# the model list filtered to the caller's plan, and the x-claudegate-quota-* headers.
source "$(dirname "$0")/../lib.sh"

step "keygen, then a 15-minute token for dev-laptop on the pro plan (and one on free)"
"$CG" keygen
TOKEN=$("$CG" issue --sub dev-laptop --plan pro)
FREE_TOKEN=$("$CG" issue --sub intern --plan free)
start_gateway
API=(-H "anthropic-version: 2023-06-01" -H "content-type: application/json")

step "POST /v1/messages with Authorization: Bearer <token>"
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $TOKEN" "${API[@]}" -d "$(message_body)"
expect_status 200
echo "$BODY"
reply=$(json_get "$BODY" 'd["content"][0]["text"]')
[ -n "$reply" ] || fail "empty reply: $BODY"
[ "$(json_get "$BODY" 'd["usage"]["output_tokens"] > 0')" = True ] || fail "no usage: $BODY"

step "the per-user quota headers (the org-wide anthropic-ratelimit-* ones are never passed on)"
echo "$HEADERS" | grep -i '^x-claudegate-quota-'
limit=$(header x-claudegate-quota-limit)
first_remaining=$(header x-claudegate-quota-remaining)
[ "$limit" = 500000 ] || fail "pro plan limit: got '$limit'"
[ "$first_remaining" -lt "$limit" ] || fail "the call was not charged: remaining $first_remaining"
[[ "$(header x-claudegate-quota-reset)" =~ T00:00:00Z$ ]] || fail "reset is not midnight UTC: $HEADERS"
if echo "$HEADERS" | grep -qi '^anthropic-ratelimit-'; then fail "org rate-limit headers leaked: $HEADERS"; fi

step "the same request streamed (\"stream\": true, x-api-key: <token>): events as they arrive"
stream_body='{"model":"claude-haiku-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"Hello"}]}'
sse=$CLAUDEGATE_HOME/stream.sse
started=${EPOCHREALTIME/./}
curl -sS -N --max-time 20 -D "$CLAUDEGATE_HOME/stream.headers" "$GATEWAY/v1/messages" \
  -H "x-api-key: $TOKEN" "${API[@]}" -d "$stream_body" |
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$sse"
    case $line in event:*) printf '+%4d ms  %s\n' $(((${EPOCHREALTIME/./} - started) / 1000)) "$line" ;; esac
  done
events=$(grep '^event:' "$sse" | cut -d' ' -f2 | tr '\n' ' ')
expect_contains "$events" "message_start content_block_start" "stream events"
expect_contains "$events" "content_block_delta" "stream events"
expect_contains "$events" "message_delta message_stop" "stream events"
streamed=$(grep '^data:' "$sse" | cut -c7- | python3 -c '
import json, sys
print("".join(e["delta"].get("text", "") for e in map(json.loads, sys.stdin) if e["type"] == "content_block_delta"))')
echo "streamed text: $streamed"
[ -n "$streamed" ] || fail "no text in the stream"
stream_remaining=$(tr -d '\r' <"$CLAUDEGATE_HOME/stream.headers" | grep -i '^x-claudegate-quota-remaining:' | cut -d' ' -f2)
[ "$stream_remaining" -lt "$first_remaining" ] || fail "the stream was not charged: $stream_remaining"

step "POST /v1/messages/count_tokens (checked against the plan, not charged)"
http "$GATEWAY/v1/messages/count_tokens" -H "x-api-key: $TOKEN" "${API[@]}" \
  -d '{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Hello"}]}'
expect_status 200
echo "$BODY"
[ "$(json_get "$BODY" 'd["input_tokens"] > 0')" = True ] || fail "count_tokens: $BODY"

step "GET /v1/models: only the models the caller's plan allows"
http "$GATEWAY/v1/models" -H "x-api-key: $TOKEN" "${API[@]}"
expect_status 200
pro_models=$(json_get "$BODY" '" ".join(m["id"] for m in d["data"])')
echo "pro:  $pro_models"
http "$GATEWAY/v1/models" -H "x-api-key: $FREE_TOKEN" "${API[@]}"
expect_status 200
free_models=$(json_get "$BODY" '" ".join(m["id"] for m in d["data"])')
echo "free: $free_models"
expect_contains "$pro_models" "sonnet" "pro models"
expect_contains "$free_models" "haiku" "free models"
case $free_models in *sonnet*) fail "the free plan lists sonnet: $free_models" ;; esac

step "a model outside the plan: 403 in Anthropic's error envelope"
http "$GATEWAY/v1/messages" -H "x-api-key: $FREE_TOKEN" "${API[@]}" -d "$(message_body claude-sonnet-4-5)"
expect_status 403
echo "$BODY"
[ "$(json_get "$BODY" 'd["error"]["type"]')" = permission_error ] || fail "403 envelope: $BODY"

step "stop serve-local (SIGTERM drains and meters), then usage-report"
stop_gateway
report=$("$CG" usage-report --by sub)
echo "$report"
expect_contains "$report" "dev-laptop" "usage-report"
metered=$(json_get "$("$CG" usage-report --sub dev-laptop --format json)" 'd["totals"]["requests"]')
[ "$metered" = 2 ] || fail "expected the plain and the streamed call metered, got $metered requests"
echo
echo "curl example: all checks passed"
