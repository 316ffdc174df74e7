#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Missing, malformed, expired, revoked and wrong-audience tokens get 401 with
# the envelope, WWW-Authenticate and x-should-retry: false (no retry makes a
# token valid), and nothing reaches upstream; an empty Bearer is "no token
# presented"; a model outside the plan or a missing scope is 403 (also
# x-should-retry: false); max_tokens above the plan's cap is lowered to it.
source "$(dirname "$0")/proxy_common.sh"

printf 'leeway = "0s"\n' >"$SCRATCH/claudegate.toml"
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub bob --plan free)
SHORT=$("$CG" issue --sub bob --plan free --ttl 1s)
WRONG_AUD=$("$CG" issue --sub bob --aud someone-else)
NO_SCOPE=$("$CG" issue --sub bob --scope "claude:read")
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
sleep 2 # SHORT is now expired (leeway 0)

expect_401() {
  call "$BASE/v1/messages" "$@" -d "$MSG"
  expect_status 401
  expect_envelope authentication_error
  [ "$(header www-authenticate)" = 'Bearer error="invalid_token"' ] || fail "WWW-Authenticate: $HEADERS"
  [ "$(header x-should-retry)" = false ] || fail "401 without x-should-retry: false: $HEADERS"
}
expect_401
# Claude Code sends an empty Bearer when its apiKeyHelper fails.
for empty in "Authorization: Bearer " "Authorization: Bearer" "Authorization: bearer   "; do
  expect_401 -H "$empty"
  expect_contains "$BODY" "no token presented"
  expect_not_contains "$BODY" "must be"
done
expect_401 -H "Authorization: Bearer not.a.jwt"
sig=${TOKEN##*.}
[ "${sig:0:1}" = A ] && flip=B || flip=A
expect_401 -H "Authorization: Bearer ${TOKEN%.*}.$flip${sig:1}" # bad signature
expect_contains "$BODY" signature
expect_401 -H "x-api-key: $SHORT"
expect_contains "$BODY" expired
expect_401 -H "Authorization: Bearer $WRONG_AUD"
expect_contains "$BODY" someone-else

# Revocation takes effect on the next request.
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 200
"$CG" revoke --token "$TOKEN" --reason "test" >/dev/null
expect_401 -H "x-api-key: $TOKEN"
expect_contains "$BODY" revoked
[ "$(wc -l <"$RECORD")" = 1 ] || fail "rejected requests reached upstream: $(cat "$RECORD")"

# 403: model outside the plan (free = haiku only), scope missing.
FRESH=$("$CG" issue --sub carol --plan free)
call "$BASE/v1/messages" -H "x-api-key: $FRESH" -d '{"model":"claude-opus-4-1","max_tokens":10,"messages":[]}'
expect_status 403
expect_envelope permission_error
[ "$(header x-should-retry)" = false ] || fail "403 without x-should-retry: false: $HEADERS"
call "$BASE/v1/messages" -H "x-api-key: $NO_SCOPE" -d "$MSG"
expect_status 403
expect_envelope permission_error
[ "$(header x-should-retry)" = false ] || fail "403 without x-should-retry: false: $HEADERS"
# Above the plan's max_tokens (free: 4096) is lowered to it (over_cap = clamp);
# a body that is not JSON is a 400.
call "$BASE/v1/messages" -H "x-api-key: $FRESH" -d '{"model":"claude-haiku-4-5","max_tokens":5000,"messages":[]}'
expect_status 200
[ "$(header claudegate-max-tokens-clamped)" = 4096 ] || fail "max_tokens above the cap was not clamped: $HEADERS"
call "$BASE/v1/messages" -H "x-api-key: $FRESH" -d 'not json'
expect_status 400
expect_envelope invalid_request_error
[ "$(wc -l <"$RECORD")" = 2 ] || fail "rejected requests reached upstream"

# Everything else is a 404 envelope; HEAD /api/hello is 200; metrics count the failures.
call "$BASE/v2/whatever"
expect_status 404
expect_envelope not_found_error
[ "$(curl -s -o /dev/null -w '%{http_code}' -I "$BASE/api/hello")" = 200 ] || fail "HEAD /api/hello"
call "$BASE/metrics"
expect_status 200
expect_contains "$BODY" 'claudegate_auth_failures_total{reason="expired"} 1'
expect_contains "$BODY" 'claudegate_auth_failures_total{reason="revoked"} 1'
expect_contains "$BODY" 'claudegate_auth_failures_total{reason="missing"} 4'
expect_contains "$BODY" 'claudegate_requests_total{status="401"}'
pass
