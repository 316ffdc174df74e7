#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A request body with a member name twice (anywhere) is refused with 400
# before anything is forwarded: an upstream that keeps the first "model" or
# "stream" would otherwise serve what the gateway never checked or charged.
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub xia --plan free)
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
for body in \
  '{"model":"claude-opus-4-1","model":"claude-haiku-4-5","max_tokens":100,"messages":[]}' \
  '{"model":"claude-haiku-4-5","max_tokens":64000,"max_tokens":100,"messages":[]}' \
  '{"model":"claude-haiku-4-5","stream":true,"stream":false,"max_tokens":100,"messages":[]}' \
  '{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":"a","content":"b"}]}' \
  '{"model":"claude-haiku-4-5","max_tokens":100,"max\u005ftokens":64000,"messages":[]}'; do
  call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$body"
  expect_status 400
  expect_envelope invalid_request_error
  expect_contains "$BODY" "duplicate member name"
  call "$BASE/v1/messages/count_tokens" -H "x-api-key: $TOKEN" -d "$body"
  expect_status 400
done
[ ! -s "$RECORD" ] || fail "a body with duplicate members reached the upstream: $(cat "$RECORD")"
stop_server
pass
