#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Daily quota: 20 concurrent requests against a small limit never push the
# ledger past it; the refused ones get 429 rate_limit_error with retry-after
# (seconds to UTC midnight) and x-should-retry: false.
# store-backends: sqlite postgresql
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
LIMIT=500
TOKEN=$("$CG" issue --sub erin --plan pro --daily-token-limit $LIMIT)
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"

for i in $(seq 1 20); do
  curl -s --max-time 30 -o "$SCRATCH/body.$i" -D "$SCRATCH/headers.$i" -w '%{http_code}\n' \
    -H "x-api-key: $TOKEN" -H "anthropic-fake-sleep: 0.5" "$BASE/v1/messages" -d "$MSG" >"$SCRATCH/status.$i" &
done
wait
ok=$(cat "$SCRATCH"/status.* | grep -c '^200$' || true)
limited=$(cat "$SCRATCH"/status.* | grep -c '^429$' || true)
[ $((ok + limited)) = 20 ] || fail "unexpected statuses: $(cat "$SCRATCH"/status.* | tr '\n' ' ')"
[ "$ok" -ge 1 ] && [ "$limited" -ge 1 ] || fail "expected both 200s and 429s, got $ok and $limited"

used=$(ledger "select sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens) from usage_ledger where subject='erin'")
[ "$used" -le $LIMIT ] || fail "ledger $used exceeds the limit $LIMIT"
[ "$(ledger "select count(*) from usage_ledger where subject='erin'")" = "$ok" ] || fail "one ledger row per forwarded request"
[ "$(wc -l <"$RECORD")" = "$ok" ] || fail "refused requests reached upstream"

quota_refusals=0
for i in $(seq 1 20); do
  grep -q '^429$' "$SCRATCH/status.$i" || continue
  # Twenty at once can also meet pro's max_concurrent (a retryable 429): look at the quota ones.
  grep -qE 'daily (token )?quota' "$SCRATCH/body.$i" || continue
  quota_refusals=$((quota_refusals + 1))
  BODY=$(cat "$SCRATCH/body.$i"); HEADERS=$(tr -d '\r' <"$SCRATCH/headers.$i")
  expect_envelope rate_limit_error
  [ "$(header x-should-retry)" = false ] || fail "x-should-retry: $HEADERS"
  retry=$(header retry-after)
  to_midnight=$(( 86400 - $(date -u +%s) % 86400 ))
  [ "$retry" -ge 1 ] && [ "$retry" -le $((to_midnight + 2)) ] && [ "$retry" -ge $((to_midnight - 60)) ] \
    || fail "retry-after $retry is not the time to UTC midnight ($to_midnight)"
  break
done
[ "$quota_refusals" = 1 ] || fail "no 429 for the daily quota among: $(cat "$SCRATCH"/body.* | cut -c1-200)"
call "$BASE/metrics"
expect_contains "$BODY" 'claudegate_quota_rejections_total{limit="daily_tokens"}'
pass
