#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A client that hangs up after sending its request but before the reply's
# head arrives gets no free tokens: the API may have run (and billed) the
# request all the same, so its ledger row charges the reservation (input
# estimate + max_tokens), marked estimated; a stream likewise.
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub gina --plan pro)
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"

for body in "$MSG" "${MSG%\}},\"stream\":true}"; do
  # The upstream answers after 2 s; the client leaves after 0.5 s.
  curl -s --max-time 0.5 -o /dev/null "$BASE/v1/messages" -H "x-api-key: $TOKEN" \
    -H "anthropic-fake-sleep: 2" -d "$body" && fail "the request should have timed out"
done
wait_rows 2
rows=$(ledger "select output_tokens || ' ' || estimated || ' ' || (input_tokens > 0) from usage_ledger order by id")
[ "$rows" = "$(printf '100 1 1\n100 1 1')" ] \
  || fail "a client gone before the reply was charged: $rows (want max_tokens 100, estimated, an input estimate)"
pass
