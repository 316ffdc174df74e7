#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# over_cap = "clamp" (the default): a max_tokens above the plan's cap or
# above what is left today is lowered in the forwarded body (every other
# byte unchanged) and announced in claudegate-max-tokens-clamped; only when
# less than 256 output tokens would be left is it refused, with a 429 that
# says what it needs and what is left. over_cap = "reject" answers 400.
# A model the plan does not allow gets a 403 naming the models it allows.
source "$(dirname "$0")/proxy_common.sh"

cat >"$SCRATCH/claudegate.toml" <<'TOML'
[plans.strict]
models = ["claude-haiku-*"]
max_tokens = 4096
over_cap = "reject"
TOML
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
FREE=$("$CG" issue --sub yan --plan free)
STRICT=$("$CG" issue --sub zed --plan strict)
SMALL=$("$CG" issue --sub amy --plan free --daily-token-limit 3000)
TINY=$("$CG" issue --sub ben --plan free --daily-token-limit 200)
start_metering_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
# As Claude Code asks: max_tokens 32 000, with a member after it.
CC_BODY='{"model":"claude-haiku-4-5","max_tokens": 32000 ,"messages":[{"role":"user","content":"Hi"}],"metadata":{"user_id":"u"}}'
forwarded() { tail -1 "$RECORD" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["body"])'; }

call "$BASE/v1/messages" -H "x-api-key: $FREE" -d "$CC_BODY"
expect_status 200
[ "$(header claudegate-max-tokens-clamped)" = 4096 ] || fail "no clamp header: $HEADERS"
[ "$(forwarded)" = "${CC_BODY/32000/4096}" ] || fail "forwarded body: $(forwarded)"

call "$BASE/v1/messages" -H "x-api-key: $STRICT" -d "$CC_BODY"
expect_status 400
expect_envelope invalid_request_error
expect_contains "$BODY" "above the limit of plan strict (4096)"

# 3000 left today: clamped to what is left after the input estimate.
call "$BASE/v1/messages" -H "x-api-key: $SMALL" -d "$CC_BODY"
expect_status 200
clamped=$(header claudegate-max-tokens-clamped)
[ "$clamped" -gt 2900 ] && [ "$clamped" -lt 3000 ] || fail "clamped to $clamped with 3000 left"
expect_contains "$(forwarded)" "\"max_tokens\": $clamped ,"

# 200 left: not even 256 output tokens fit. The 429 says so, not "exhausted (used 0 …)".
call "$BASE/v1/messages" -H "x-api-key: $TINY" -d "$CC_BODY"
expect_status 429
expect_envelope rate_limit_error
expect_contains "$BODY" "needs up to"
expect_contains "$BODY" "200 left today"
expect_not_contains "$BODY" "exhausted"

# Claude Code's default model on a plan without it: the 403 names what the plan allows.
call "$BASE/v1/messages" -H "x-api-key: $FREE" -d '{"model":"claude-opus-4-8","max_tokens":100,"messages":[]}'
expect_status 403
expect_envelope permission_error
expect_contains "$BODY" "it allows claude-3-5-haiku*, claude-haiku*, claude-3-haiku*"
stop_server
pass
