# SPDX-License-Identifier: Apache-2.0
# Shared setup for the serve-local tests: the CLI helpers plus starting
# serve-local (and the recording fake upstream) on free loopback ports,
# always stopped by the EXIT trap.
source "$(dirname "$0")/../cli/common.sh"
source "$(dirname "$0")/../../scripts/lib/serve_local.sh"
command -v curl >/dev/null || { echo "SKIPPED: curl not installed"; exit 77; }
command -v sqlite3 >/dev/null || { echo "SKIPPED: sqlite3 not installed"; exit 77; }

PROXY_DIR=$(cd "$(dirname "$0")" && pwd)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$SCRATCH"
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
start_server() {
  SERVER_LOG=$SCRATCH/server.log
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

# SQL over the store.
ledger() { sqlite3 "$CLAUDEGATE_HOME/claudegate.db" "$1"; }

# Wait (up to 10 s) until the ledger holds at least $1 rows matching SQL
# condition $2 (default: any): a stream is settled only after its last byte
# has reached the client, so its row can come just after curl returns.
wait_rows() {
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(ledger "select count(*) from usage_ledger where ${2:-1}")" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "expected $1 ledger rows where ${2:-1}: $(ledger 'select * from usage_ledger')"
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
