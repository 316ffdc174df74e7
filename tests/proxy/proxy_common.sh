# SPDX-License-Identifier: Apache-2.0
# Shared setup for the serve-local tests: the CLI helpers plus starting
# serve-local (and the recording fake upstream) on free loopback ports,
# always stopped by the EXIT trap.
source "$(dirname "$0")/../cli/common.sh"
source "$(dirname "$0")/../../scripts/lib/serve_local.sh"
command -v curl >/dev/null || { echo "SKIPPED: curl not installed"; exit 77; }
if [ "$STORE_BACKEND" = sqlite ]; then
  command -v sqlite3 >/dev/null || { echo "SKIPPED: sqlite3 not installed"; exit 77; }
fi

PROXY_DIR=$(cd "$(dirname "$0")" && pwd)
PG_CLUSTER_SH=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts" && pwd)/pg-cluster.sh
PIDS=()
PG_CLUSTERS=()  # stopped on exit (start_pg_cluster)
cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  local dir
  for dir in "${PG_CLUSTERS[@]}"; do "$PG_CLUSTER_SH" stop "$dir" || true; done
  cleanup_scratch
}
trap cleanup EXIT

# Wait up to $2 tenths of a second for file $1 to exist and be non-empty.
wait_file() {
  local i
  for ((i = 0; i < ${2:-100}; i++)); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  fail "timed out waiting for $1"
}

# Start fake API script $1 (in this folder) on a free port; sets UPSTREAM_URL
# and RECORD, the file it appends each request to.
start_upstream() {
  RECORD=$SCRATCH/upstream.jsonl
  : >"$RECORD"
  "$PY" "$PROXY_DIR/$1" "$SCRATCH/upstream.port" "$RECORD" &
  PIDS+=($!)
  disown $!
  wait_file "$SCRATCH/upstream.port"
  UPSTREAM_URL="http://127.0.0.1:$(cat "$SCRATCH/upstream.port")"
}

# The recording fake upstream (fake_upstream.py).
start_fake_upstream() { start_upstream fake_upstream.py; }

# The fake API that reports stream usage only at the end, as the real one
# does (metering_upstream.py).
start_metering_upstream() { start_upstream metering_upstream.py; }

# Start serve-local on a free port with extra args "$@"; sets BASE, SERVER_PID, SERVER_LOG.
# SERVER_LOG_AT, when set, names the log (start_replicas: one per replica).
start_server() {
  SERVER_LOG=${SERVER_LOG_AT:-$SCRATCH/server.log}
  # Emptied here, not by the redirection below: that one runs in the
  # background job, maybe after serve_local_url has read the last server's line.
  : >"$SERVER_LOG"
  "$CG" serve-local --listen 127.0.0.1:0 "$@" 2>"$SERVER_LOG" &
  SERVER_PID=$!
  disown "$SERVER_PID"
  PIDS+=("$SERVER_PID")
  BASE=$(serve_local_url "$SERVER_LOG" "$SERVER_PID") || fail "see above"
  # Retried: on a loaded machine (CI runs tests two at a time) the first
  # answer of a just-started server can take longer than one try allows.
  curl -sf --max-time 5 --retry 3 --retry-connrefused --retry-delay 1 "$BASE/healthz" >/dev/null \
    || fail "no /healthz at $BASE: $(tail -5 "$SERVER_LOG")"
}

# Stop serve-local with SIGTERM and wait (bounded) for it to exit.
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  local i
  for ((i = 0; i < 150; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then fail "serve-local did not stop on SIGTERM"; fi
}

# curl "$@" against the server: body in $BODY, status in $STATUS, headers in $HEADERS.
call() {
  local status
  status=$(curl -s --max-time 20 -o "$SCRATCH/body" -D "$SCRATCH/headers" -w '%{http_code}' "$@") || true
  STATUS=$status
  BODY=$(cat "$SCRATCH/body" 2>/dev/null || true)
  HEADERS=$(tr -d '\r' <"$SCRATCH/headers" 2>/dev/null || true)
}

expect_status() {
  [ "$STATUS" = "$1" ] || fail "expected HTTP $1, got $STATUS: $BODY"
}

# The value of response header $1 (case-insensitive) from the last call.
header() {
  echo "$HEADERS" | grep -i "^$1:" | head -1 | cut -d: -f2- | sed 's/^ //'
}

# Require the last body to be Anthropic's error envelope of type $1.
expect_envelope() {
  [ "$(json_get "$BODY" 'd["type"]')" = error ] || fail "not an error envelope: $BODY"
  [ "$(json_get "$BODY" 'd["error"]["type"]')" = "$1" ] || fail "expected $1: $BODY"
  expect_contains "$(json_get "$BODY" 'd["request_id"]')" "req_"
}

# SQL over the store (either backend: store_sql).
ledger() { store_sql "$1"; }

# Wait (up to 10 s) until the ledger holds at least $1 rows matching SQL
# condition $2 (default: any): a stream is settled only after its last byte
# has reached the client, so its row can come just after curl returns.
wait_rows() {
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(ledger "select count(*) from usage_ledger where ${2:-1 = 1}")" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "expected $1 ledger rows where ${2:-1 = 1}: $(ledger 'select * from usage_ledger')"
}

# Wait (up to 10 s) until serve-local's request log holds text $1: lines
# are written behind the requests, a few ms after the reply has gone.
wait_log() {
  local i
  for ((i = 0; i < 100; i++)); do
    grep -qF -- "$1" "$SERVER_LOG" && return 0
    sleep 0.1
  done
  fail "expected '$1' in the request log: $(cat "$SERVER_LOG")"
}

MSG='{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":"Hello"}]}'

# ---- several gateways on one PostgreSQL (issue #17) ----------------------------

# The PostgreSQL-only tests (marked "# store-backends: postgresql"): skip,
# or fail with CI set, without a test server (require_test_postgres); a
# fresh database of it as the store, also when run by hand without
# CLAUDEGATE_TEST_STORE=postgresql. SQL over it: ledger (store_sql).
need_postgres() {
  require_test_postgres
  if [ "$STORE_BACKEND" != postgresql ]; then
    STORE_BACKEND=postgresql
    CLAUDEGATE_DB=$(pg_new_database)
    export CLAUDEGATE_DB
  fi
}

# A throwaway cluster of our own (scripts/pg-cluster.sh) in the scratch
# folder, for the tests that stop or restart the server; stopped on exit.
# Sets PG_CLUSTER (its folder: data/, server.log) and PG_CTL; the store
# (CLAUDEGATE_DB) becomes the cluster's database "postgres".
start_pg_cluster() {
  chmod 711 "$SCRATCH" # the postgres user must reach the cluster's folder
  PG_CLUSTER=$SCRATCH/pg
  PG_CLUSTERS+=("$PG_CLUSTER")
  CLAUDEGATE_DB=$("$PG_CLUSTER_SH" start "$PG_CLUSTER") || fail "could not start a PostgreSQL cluster"
  export CLAUDEGATE_DB
  # pg_ctl runs as the cluster's owner (the server refuses root).
  PG_CTL=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/pg_ctl
}

# Start $1 serve-local replicas with extra args "$@", each with its own log
# ($SCRATCH/replica-N.log); sets the arrays REPLICA_BASES and REPLICA_PIDS.
start_replicas() {
  local count=$1 i
  shift
  REPLICA_BASES=() REPLICA_PIDS=()
  for ((i = 0; i < count; i++)); do
    SERVER_LOG_AT=$SCRATCH/replica-$i.log start_server "$@"
    REPLICA_BASES+=("$BASE")
    REPLICA_PIDS+=("$SERVER_PID")
  done
}

# SIGTERM every replica and wait for each (they drain and return their leases).
stop_replicas() {
  local pid
  for pid in "${REPLICA_PIDS[@]}"; do SERVER_PID=$pid stop_server; done
}

# A claudegate.toml in the home with one plan, "team", whose only bound is a
# daily limit of $1 tokens (default 1 000 000 000: reservations still come
# from a lease), without rpm or concurrency refusals.
write_team_plan() {
  cat >"$CLAUDEGATE_HOME/claudegate.toml" <<TOML
[plans.team]
daily_token_limit = ${1:-1000000000}
models = ["claude-*"]
max_tokens = 4096
rpm = 1000000
max_concurrent = 100000
TOML
}

# Tokens in the ledger of subject $1 (every kind of token counted against the quota).
ledger_tokens() {
  ledger "select coalesce(sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0) from usage_ledger where subject = '$1'"
}
