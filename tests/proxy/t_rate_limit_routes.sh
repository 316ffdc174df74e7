#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every authenticated route counts against the plan's rpm: count_tokens is
# free of token quota, not of rate limits, and so are the models routes.
source "$(dirname "$0")/proxy_common.sh"

cat >"$SCRATCH/claudegate.toml" <<'TOML'
[plans.tiny]
models = ["claude-haiku-*"]
rpm = 3
TOML
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"

for route in "/v1/messages/count_tokens" "/v1/models" "/v1/models/claude-haiku-4-5"; do
  TOKEN=$("$CG" issue --sub "rpm-$(basename "$route")" --plan tiny)
  for i in 1 2 3; do
    if [ "$route" = /v1/messages/count_tokens ]; then
      call "$BASE$route" -H "x-api-key: $TOKEN" -d "$MSG"
    else
      call "$BASE$route" -H "x-api-key: $TOKEN"
    fi
    expect_status 200
  done
  if [ "$route" = /v1/messages/count_tokens ]; then
    call "$BASE$route" -H "x-api-key: $TOKEN" -d "$MSG"
  else
    call "$BASE$route" -H "x-api-key: $TOKEN"
  fi
  expect_status 429
  expect_envelope rate_limit_error
  expect_contains "$BODY" "rpm limit of plan tiny"
  # The minute's budget is spent for the messages route too.
  call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
  expect_status 429
done
stop_server
pass
