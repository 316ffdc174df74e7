#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A plan's rpm and max_concurrent: over either → 429 rate_limit_error with a
# short retry-after (and retrying allowed), nothing forwarded.
source "$(dirname "$0")/proxy_common.sh"

cat >"$SCRATCH/claudegate.toml" <<'TOML'
[plans.tiny]
models = ["claude-haiku-*"]
rpm = 2
[plans.single]
models = ["claude-haiku-*"]
max_concurrent = 1
TOML
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
TINY=$("$CG" issue --sub kim --plan tiny)
SINGLE=$("$CG" issue --sub lou --plan single)
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"

for i in 1 2; do
  call "$BASE/v1/messages" -H "x-api-key: $TINY" -d "$MSG"
  expect_status 200
done
call "$BASE/v1/messages" -H "x-api-key: $TINY" -d "$MSG"
expect_status 429
expect_envelope rate_limit_error
retry=$(header retry-after)
[ "$retry" -ge 1 ] && [ "$retry" -le 60 ] || fail "retry-after for rpm: $retry"
[ "$(header x-should-retry)" != false ] || fail "rpm refusals may be retried"

# One request in flight (slow upstream), a second one at the same time is refused.
curl -s -o /dev/null --max-time 10 -H "x-api-key: $SINGLE" -H "anthropic-fake-sleep: 1.5" "$BASE/v1/messages" -d "$MSG" &
slow=$!
sleep 0.5
call "$BASE/v1/messages" -H "x-api-key: $SINGLE" -d "$MSG"
expect_status 429
expect_envelope rate_limit_error
wait "$slow"
call "$BASE/v1/messages" -H "x-api-key: $SINGLE" -d "$MSG"
expect_status 200
[ "$(wc -l <"$RECORD")" = 4 ] || fail "refused requests reached upstream"
pass
