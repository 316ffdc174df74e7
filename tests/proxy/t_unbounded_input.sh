#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A request whose input cannot be bounded from its body (a document by URL
# or from the Files API, web_fetch/web_search, a container upload) reserves
# all that is left of the subject's quota (or the plan's
# unbounded_input_reserve), so parallel ones cannot overshoot the limit by
# more than one request's real usage.
source "$(dirname "$0")/proxy_common.sh"

cat >"$SCRATCH/claudegate.toml" <<'TOML'
[plans.capped]
models = ["claude-haiku-*"]
daily_token_limit = 50000
unbounded_input_reserve = 20000
TOML
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub uma --plan pro --daily-token-limit 5000)
CAPPED=$("$CG" issue --sub vic --plan capped)
start_metering_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
URL_DOC='{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://example.com/big.pdf"}},{"type":"text","text":"Summarise"}]}]}'
WEB_FETCH='{"model":"claude-haiku-4-5","max_tokens":100,"tools":[{"type":"web_fetch_20250910","name":"web_fetch"}],"messages":[{"role":"user","content":"Read https://example.com"}]}'

# Three at once, each fetching a document the API costs at 100 000 input tokens:
# the first holds the whole remaining quota, so the others are refused.
for i in 1 2 3; do
  curl -s --max-time 20 -o "$SCRATCH/body.$i" -w '%{http_code}\n' -H "x-api-key: $TOKEN" \
    -H "anthropic-fake-input: 100000" "$BASE/v1/messages" -d "$URL_DOC" >"$SCRATCH/status.$i" &
done
wait
ok=$(cat "$SCRATCH"/status.* | grep -c '^200$' || true)
[ "$ok" = 1 ] || fail "$ok of 3 unbounded requests went through at once: $(cat "$SCRATCH"/status.* | tr '\n' ' ')"
for i in 1 2 3; do
  grep -q '^429$' "$SCRATCH/status.$i" || continue
  expect_contains "$(cat "$SCRATCH/body.$i")" "cannot be bounded"
done
[ "$(wc -l <"$RECORD")" = 1 ] || fail "refused unbounded requests reached the upstream"

# A plan's unbounded_input_reserve caps what one such request holds: two fit in 50 000.
for i in 1 2; do
  curl -s --max-time 20 -o /dev/null -w '%{http_code}\n' -H "x-api-key: $CAPPED" -H "anthropic-fake-input: 1000" \
    "$BASE/v1/messages" -d "$WEB_FETCH" >"$SCRATCH/capped.$i" &
done
wait
[ "$(cat "$SCRATCH"/capped.* | grep -c '^200$')" = 2 ] || fail "capped: $(cat "$SCRATCH"/capped.* | tr '\n' ' ')"
stop_server
pass
