#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Three serve-local replicas on one PostgreSQL (a throwaway cluster from
# scripts/pg-cluster.sh): a daily quota shared by all of them (each spends
# leases of it in memory; together they never pass the limit), and a
# revocation written from a shell seen by all of them within a second.
source "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
PG_CLUSTER_SH=$here/../../scripts/pg-cluster.sh
command -v psql >/dev/null || skip "psql is not installed (Debian: postgresql-client; scripts/install-deps.sh test)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
  skip "PostgreSQL's server is not installed (Debian: postgresql; scripts/install-deps.sh test)"

# The cluster lives beside the home (the postgres user must reach it: mode 711) and is stopped on exit.
PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/claudegate-example-pg.XXXXXX")
chmod 711 "$PG_DIR"
replicas_cleanup() {
  example_cleanup
  "$PG_CLUSTER_SH" stop "$PG_DIR/cluster" || true
  rm -rf "$PG_DIR"
}
trap replicas_cleanup EXIT

step "one PostgreSQL: scripts/pg-cluster.sh start (initdb + pg_ctl on 127.0.0.1, a free port), a database for claudegate"
ADMIN=$("$PG_CLUSTER_SH" start "$PG_DIR/cluster") || fail "could not start PostgreSQL (see above)"
psql -X -q -d "$ADMIN" -c 'CREATE DATABASE claudegate' || fail "could not create the database"
# Every command below (issue, revoke, usage-report, serve-local) uses it: --db URI would do the same.
export CLAUDEGATE_DB=${ADMIN%/*}/claudegate
echo "CLAUDEGATE_DB=$(sed -E 's|//([^:/@]+):[^@]*@|//\1:***@|' <<<"$CLAUDEGATE_DB")"

step "keygen (the key is shared by the replicas through the home), a plan with a daily limit of 2000 tokens"
"$CG" keygen
cat >"$CLAUDEGATE_HOME/claudegate.toml" <<'TOML'
[plans.team]
daily_token_limit = 2000
models = ["claude-*"]
max_tokens = 4096
rpm = 100000
max_concurrent = 1000
TOML
DANA=$("$CG" issue --sub dana --plan team)

step "three serve-local on the same database"
GATEWAYS=()
for _ in 1 2 3; do
  start_gateway
  GATEWAYS+=("$GATEWAY")
done

step "dana's requests round-robin over the three until the shared quota is gone"
body='{"model":"claude-haiku-4-5","max_tokens":20,"messages":[{"role":"user","content":"Hello"}]}'
declare -A served refused
refusals_in_a_row=0
for ((n = 0; n < 300 && refusals_in_a_row < 3; n++)); do
  gw=${GATEWAYS[n % 3]}
  http "$gw/v1/messages" -H "x-api-key: $DANA" -H "content-type: application/json" -d "$body"
  case $STATUS in
    200)
      served[$gw]=$((${served[$gw]:-0} + 1))
      refusals_in_a_row=0
      ;;
    429)
      refused[$gw]=$((${refused[$gw]:-0} + 1))
      refusals_in_a_row=$((refusals_in_a_row + 1))
      ;;
    *) fail "request $n to $gw: HTTP $STATUS $BODY" ;;
  esac
done
for gw in "${GATEWAYS[@]}"; do
  echo "$gw: ${served[$gw]:-0} served, ${refused[$gw]:-0} refused (429)"
  [ "${served[$gw]:-0}" -ge 1 ] || fail "$gw served nothing"
done
echo "the last three requests, one per replica, were refused: $(json_get "$BODY" 'd["error"]["message"]')"
[ "$refusals_in_a_row" = 3 ] || fail "the quota was not exhausted after $n requests"

step "a revocation from a shell reaches every replica: eli's token works on all three, then revoke --sub eli"
ELI=$("$CG" issue --sub eli --plan team)
for gw in "${GATEWAYS[@]}"; do
  http "$gw/v1/messages" -H "x-api-key: $ELI" -H "content-type: application/json" -d "$body"
  expect_status 200
done
echo "eli: HTTP 200 from each replica"
"$CG" revoke --sub eli --reason "left the team"
revoked=$(date +%s%N)
for gw in "${GATEWAYS[@]}"; do
  for ((try = 0; try < 200; try++)); do
    http "$gw/v1/messages" -H "x-api-key: $ELI" -H "content-type: application/json" -d "$body"
    [ "$STATUS" = 401 ] && break
    sleep 0.01
  done
  ms=$((($(date +%s%N) - revoked) / 1000000)) # the replicas are asked in turn: an upper bound for each
  echo "$gw: HTTP $STATUS $(json_get "$BODY" 'd["error"]["type"]') within $ms ms of revoke's exit"
  expect_status 401
done

step "usage-report over the shared ledger: dana's total is within her daily limit"
for pid in "${EXAMPLE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done # they return their leases
for pid in "${EXAMPLE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
EXAMPLE_PIDS=()
"$CG" usage-report --by sub
report=$("$CG" usage-report --sub dana --format json)
total=$(json_get "$report" 'd["totals"]["total_tokens"]')
echo "dana: $total tokens metered of her 2000"
[ "$total" -le 2000 ] || fail "the replicas together went past the limit: $total"

echo
echo "replicas example: all checks passed"
