#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A store held by another process past the 30 s busy timeout (revoke alone is
# in tests/cli/t_error_messages.sh): verify never calls a token valid when it
# could not read the deny-list, issue and rotation fail without a half token,
# and serve-local still answers: a request is reserved from the lease it
# holds in memory and its ledger row is written once the lock is gone
# (never lost), and other routes go on. All cases wait on the lock at once.
source "$(dirname "$0")/../proxy/proxy_common.sh"
PROXY_DIR=$(cd "$(dirname "$0")/../proxy" && pwd) # fake_upstream.py lives there
source "$(dirname "$0")/secrets.sh"

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub dan --plan pro)
CLI_DB=$SCRATCH/cli.db
pair=$(CLAUDEGATE_DB=$CLI_DB "$CG" issue --sub dan --refresh --json)
R=$(json_get "$pair" 'd["refresh_token"]')
secret_token "$TOKEN"
secret_value "$R"
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 200

# Hold store $1 with an open write transaction until killed; $2 = exclusive
# also shuts readers out (SQLite's exclusive locking mode), else writers only.
hold_lock() {
  "$PY" - "$1" "$2" >"$SCRATCH/lock.$2" <<'PYEOF' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "exclusive":
    c.execute("PRAGMA locking_mode = EXCLUSIVE")
c.execute("BEGIN EXCLUSIVE")
c.execute("INSERT INTO audit_events (at, kind, subject, detail) VALUES (0, 'test', 'locker', '')")
print("locked", flush=True)
time.sleep(60)
PYEOF
  PIDS+=($!)
  LOCKERS+=($!)
  wait_file "$SCRATCH/lock.$2"
}
LOCKERS=()
hold_lock "$CLAUDEGATE_HOME/claudegate.db" writers
hold_lock "$CLI_DB" exclusive

# Run "$@" in the background with the CLI store: status, stdout, stderr in $SCRATCH/$1.*.
bg() {
  local name=$1
  shift
  (
    status=0
    CLAUDEGATE_DB=$CLI_DB "$CG" "$@" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" || status=$?
    echo "$status" >"$SCRATCH/$name.status"
  ) &
  WAITING+=($!)
}
WAITING=()
bg verify verify "$TOKEN"
bg issue issue --sub dan --refresh
bg rotate issue --refresh-token "$R"
curl -s --max-time 60 -o "$SCRATCH/proxy.body" -w '%{http_code}' "$BASE/v1/messages" \
  -H "x-api-key: $TOKEN" -d "$MSG" >"$SCRATCH/proxy.status" &
WAITING+=($!)
sleep 1
# Other routes do not wait for the store.
curl -sf --max-time 5 "$BASE/healthz" >/dev/null || fail "serve-local froze while its store was locked"
for pid in "${WAITING[@]}"; do wait "$pid" || true; done

# The CLI command $1 failed with exit 1, the store named and the fix, nothing on stdout.
refused() {
  [ "$(cat "$SCRATCH/$1.status")" = 1 ] || fail "$1 exited $(cat "$SCRATCH/$1.status"): $(cat "$SCRATCH/$1.err")"
  [ ! -s "$SCRATCH/$1.out" ] || fail "$1 printed: $(cat "$SCRATCH/$1.out")"
  ERR=$(cat "$SCRATCH/$1.err")
  expect_contains "$ERR" "$CLI_DB"
  expect_contains "$ERR" "another process holds the store"
}
refused verify
refused issue
refused rotate
STATUS=$(cat "$SCRATCH/proxy.status")
BODY=$(cat "$SCRATCH/proxy.body")
expect_status 200 # from the lease in memory: the request path never waits on the store
[ "$(wc -l <"$RECORD")" = 2 ] || fail "upstream requests: $(cat "$RECORD")"
assert_no_secrets "$SCRATCH"/*.err "$SCRATCH/proxy.body" "$SERVER_LOG"

# Lock released: both stores are sound, nothing half-written, R still rotates.
for pid in "${LOCKERS[@]}"; do kill "$pid" 2>/dev/null || true; done
for pid in "${LOCKERS[@]}"; do wait "$pid" 2>/dev/null || true; done
for db in "$CLAUDEGATE_HOME/claudegate.db" "$CLI_DB"; do
  [ "$(sqlite3 "$db" 'pragma integrity_check')" = ok ] || fail "integrity_check of $db"
  [ "$(sqlite3 "$db" "select count(*) from audit_events where subject = 'locker'")" = 0 ] || fail "locker row kept"
done
[ "$(sqlite3 "$CLI_DB" 'select count(*) from refresh_families')" = 1 ] || fail "issue stored a family"
wait_rows 2 # the row queued while the store was locked, written once it was released
[ "$(ledger 'select count(*) from usage_ledger')" = 2 ] || fail "ledger: $(ledger 'select * from usage_ledger')"
[ "$(ledger 'select count(*) from quota_reservations')" = 0 ] || fail "a reservation was left behind"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 200
CLAUDEGATE_DB=$CLI_DB expect_exit 0 "$CG" issue --refresh-token "$R"
pass
