#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# store-backends: postgresql
# Three serve-local replicas on one PostgreSQL, one subject with a daily
# limit, 300 concurrent requests round-robin over them: each replica
# reserves from its own lease, yet together they never push the ledger past
# the limit; and no request is refused while more than one request's worth
# is left at the end (leases must not strand quota on other replicas)
# (issue #17 target: replicas).
source "$(dirname "$0")/proxy_common.sh"
need_postgres

"$CG" keygen >/dev/null
LIMIT=3000
# Only the daily quota bounds (no rpm or concurrency 429s). max_tokens 10 is
# below the mock's shortest answer (24 words), so every reply's usage equals
# its reservation: at the end, what is left is exactly what was never served.
write_team_plan $LIMIT
TOKEN=$("$CG" issue --sub rhea --plan team)
BODY='{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"Hello"}]}'

start_replicas 3 --mock-upstream
"$PY" "$PROXY_DIR/concurrent_posts.py" 300 "$TOKEN" "$BODY" "${REPLICA_BASES[@]}" >"$SCRATCH/statuses"
ok=$(grep -c '^200$' "$SCRATCH/statuses" || true)
limited=$(grep -c '^429$' "$SCRATCH/statuses" || true)
[ $((ok + limited)) = 300 ] || fail "unexpected statuses: $(sort "$SCRATCH/statuses" | uniq -c | tr '\n' ' ')"
[ "$ok" -ge 10 ] && [ "$limited" -ge 1 ] || fail "expected 200s and 429s, got $ok and $limited"

# All stop (SIGTERM): the ledger is complete and every lease is back.
stop_replicas
used=$(ledger_tokens rhea)
rows=$(ledger "select count(*) from usage_ledger where subject = 'rhea'")
# One request's worth: every row is the same request, its usage its reservation.
per_request=$(ledger "select max(input_tokens + output_tokens) from usage_ledger where subject = 'rhea'")
smallest=$(ledger "select min(input_tokens + output_tokens) from usage_ledger where subject = 'rhea'")
left=$((LIMIT - used))
echo "served=$ok refused=$limited ledger: $rows rows, $used of $LIMIT tokens; one request = $per_request tokens; left $left"
[ "$used" -le $LIMIT ] || fail "the three replicas together let the ledger reach $used, past the limit $LIMIT"
[ "$rows" = "$ok" ] || fail "one ledger row per 200: $rows rows for $ok"
[ "$(ledger "select count(distinct request_id) from usage_ledger where subject = 'rhea'")" = "$ok" ] \
  || fail "duplicate ledger rows"
[ "$smallest" = "$per_request" ] || fail "requests of unequal usage ($smallest..$per_request): the arithmetic below needs equal ones"
[ "$(ledger 'select count(*) from quota_leases')" = 0 ] || fail "leases left after shutdown: $(ledger 'select * from quota_leases')"
# Refused while more than one request's worth was left: quota stranded in
# other replicas' leases (their spare) turned requests away.
[ "$left" -le "$per_request" ] \
  || fail "$limited requests refused, yet $left tokens (more than one request's $per_request) were never served"
pass
