#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Client-supplied numbers never wrap the reservation: max_tokens outside
# 1..serve.max_output_tokens (128 000 unless configured) is a 400 before
# anything is reserved, and a user with a 1 000-token limit cannot spend
# more than 1 000 however large a max_tokens is in flight.
# store-backends: sqlite postgresql
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub ivan --plan admin --daily-token-limit 1000)
start_metering_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
body() { echo "{\"model\":\"claude-haiku-4-5\",\"max_tokens\":$1,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}"; }

for huge in 9223372036854775807 9223372036854775000 128001; do
  call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$(body $huge)"
  expect_status 400
  expect_envelope invalid_request_error
  expect_contains "$BODY" "max_tokens"
done
expect_contains "$BODY" "128000"
[ ! -s "$RECORD" ] || fail "a refused max_tokens reached the upstream"
[ "$(ledger 'select count(*) from quota_reservations')" = 0 ] || fail "a refused request left a reservation"

# A long stream holds most of the quota; small requests beside it cannot spend past the limit.
curl -sN --max-time 30 "$BASE/v1/messages" -H "x-api-key: $TOKEN" -H "anthropic-fake-deltas: 60" \
  -d '{"model":"claude-haiku-4-5","max_tokens":900,"stream":true,"messages":[{"role":"user","content":"Hi"}]}' \
  >/dev/null &
sleep 0.5
for _ in 1 2 3 4 5 6 7 8 9 10; do
  call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$(body 100)"
done
wait
wait_rows 1 "subject='ivan' and CAST(stream AS INTEGER) = 1"
spent=$(ledger "select sum(input_tokens + output_tokens) from usage_ledger where subject='ivan'")
[ "$spent" -le 1000 ] || fail "a 1000-token limit was overspent: $spent"
stop_server
pass
