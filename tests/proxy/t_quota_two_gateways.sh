#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two serve-local on one SQLite file (one home), one subject with a small
# daily limit, 300 concurrent requests spread over both: each process
# reserves from its own lease in memory, yet together they never push the
# ledger past the limit; the rest get 429; on SIGTERM both return their
# leases (issue #16 target 7).
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
LIMIT=4000
write_team_plan "$LIMIT" # the daily quota is its only bound (no rpm or concurrency 429s)
TOKEN=$("$CG" issue --sub tess --plan team)

start_server --mock-upstream
BASE_A=$BASE PID_A=$SERVER_PID
start_server --mock-upstream
BASE_B=$BASE PID_B=$SERVER_PID

"$PY" "$PROXY_DIR/concurrent_posts.py" 300 "$TOKEN" "$MSG" "$BASE_A" "$BASE_B" >"$SCRATCH/statuses"
ok=$(grep -c '^200$' "$SCRATCH/statuses" || true)
limited=$(grep -c '^429$' "$SCRATCH/statuses" || true)
[ $((ok + limited)) = 300 ] || fail "unexpected statuses: $(sort "$SCRATCH/statuses" | uniq -c | tr '\n' ' ')"
[ "$ok" -ge 10 ] && [ "$limited" -ge 1 ] || fail "expected 200s and 429s, got $ok and $limited"

# Both stop (SIGTERM): the ledger is complete and every lease is back.
SERVER_PID=$PID_A stop_server
SERVER_PID=$PID_B stop_server
used=$(ledger "select sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens) from usage_ledger where subject='tess'")
[ "$used" -le $LIMIT ] || fail "the two gateways together let the ledger reach $used, past the limit $LIMIT"
[ "$(ledger "select count(*) from usage_ledger where subject='tess'")" = "$ok" ] || fail "one ledger row per 200"
[ "$(ledger "select count(distinct request_id) from usage_ledger where subject='tess'")" = "$ok" ] \
  || fail "duplicate ledger rows"
[ "$(ledger 'select count(*) from quota_leases')" = 0 ] || fail "leases left after shutdown: $(ledger 'select * from quota_leases')"
# Not stranded in one process's lease: most of the quota was served.
[ "$used" -ge $((LIMIT / 2)) ] || fail "only $used of $LIMIT served: leases stranded the rest"
echo "served=$ok refused=$limited tokens=$used/$LIMIT"
pass
