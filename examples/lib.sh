# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared by the examples' run.sh scripts: strict mode, a throwaway claudegate
# home, serve-local with the built-in mock Claude on a free loopback port, and
# a few checks. Everything started here is stopped, and the home removed, on exit.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../scripts/lib/serve_local.sh"

# The binary: installed on PATH, or the one a build made (CLAUDEGATE_BIN=build/apps/claudegate/claudegate).
CG=${CLAUDEGATE_BIN:-claudegate}

fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# Print a heading for the next step, so the output reads as a walk-through.
step() { printf '\n== %s\n' "$*"; }

# Stop with exit status 77 ("skipped") when the example cannot run here.
skip() {
  echo "SKIPPED: $*" >&2
  exit 77
}

command -v "$CG" >/dev/null || fail "claudegate not found; install it or set CLAUDEGATE_BIN to the built binary"
# An absolute path, so it still works after a cd and in helper scripts the examples run.
case $CG in */*) CG=$(cd "$(dirname "$CG")" && pwd)/$(basename "$CG") ;; esac
export CLAUDEGATE_BIN=$CG
command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed (the examples read JSON with it)"

# A throwaway home: its own keys, store and config, so the examples never touch yours.
CLAUDEGATE_HOME=$(mktemp -d "${TMPDIR:-/tmp}/claudegate-example.XXXXXX")
export CLAUDEGATE_HOME
unset CLAUDEGATE_DB CLAUDEGATE_CONFIG
EXAMPLE_PIDS=()

example_cleanup() {
  local pid
  for pid in "${EXAMPLE_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$CLAUDEGATE_HOME"
}
trap example_cleanup EXIT
trap 'exit 130' INT TERM # so Ctrl-C also runs the cleanup

# Remember background process $1 so the exit trap stops it.
track_pid() { EXAMPLE_PIDS+=("$1"); }

# The value at Python expression $2 (over `d`) of JSON text $1.
json_get() {
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

# Require $1 to contain $2 (what the check is about in $3).
expect_contains() {
  case "$1" in
    *"$2"*) ;;
    *) fail "${3:-output}: expected to find '$2' in: $1" ;;
  esac
}

# Run "$@" and require exit status $1; its stdout is in $OUT, its stderr in $ERR.
expect_exit() {
  local want=$1 status=0
  shift
  OUT=$("$@" 2>"$CLAUDEGATE_HOME/stderr") || status=$?
  ERR=$(cat "$CLAUDEGATE_HOME/stderr")
  [ "$status" -eq "$want" ] || fail "expected exit $want, got $status from: $* (stderr: $ERR)"
}

# Start `serve-local --mock-upstream` on a free loopback port with extra args "$@".
# Sets GATEWAY (its base URL) and GATEWAY_PID; the request log goes to $GATEWAY_LOG.
start_gateway() {
  local stderr=$CLAUDEGATE_HOME/serve-local.stderr
  GATEWAY_LOG=$CLAUDEGATE_HOME/requests.log
  : >"$stderr" # before the server starts, so the wait below can read it at once
  # Port 0: the system picks a free port and serve-local prints the one it got.
  "$CG" serve-local --mock-upstream --listen 127.0.0.1:0 --log "$GATEWAY_LOG" "$@" 2>"$stderr" &
  GATEWAY_PID=$!
  track_pid "$GATEWAY_PID"
  GATEWAY=$(serve_local_url "$stderr" "$GATEWAY_PID") || fail "see above"
  curl -sf --max-time 5 "$GATEWAY/healthz" >/dev/null || fail "no /healthz at $GATEWAY"
  echo "serve-local (mock Claude) is listening on $GATEWAY"
}

# Stop serve-local with SIGTERM (it drains and meters in-flight requests) and wait for it.
stop_gateway() {
  kill -TERM "$GATEWAY_PID" 2>/dev/null || true
  wait "$GATEWAY_PID" 2>/dev/null || true
}

# POST/GET with curl "$@": the body in $BODY, the status in $STATUS, the headers in $HEADERS.
http() {
  local scratch=$CLAUDEGATE_HOME/http
  STATUS=$(curl -s --max-time 20 -o "$scratch.body" -D "$scratch.headers" -w '%{http_code}' "$@") || true
  BODY=$(cat "$scratch.body" 2>/dev/null || true)
  HEADERS=$(tr -d '\r' <"$scratch.headers" 2>/dev/null || true)
}

# Require the last http call to have answered status $1.
expect_status() {
  [ "$STATUS" = "$1" ] || fail "expected HTTP $1, got $STATUS: $BODY"
}

# The value of response header $1 (case-insensitive) from the last http call.
header() {
  { echo "$HEADERS" | grep -i -m1 "^$1:" || true; } | cut -d: -f2- | sed 's/^ //'
}

# A small Messages API request body for model $1 (default claude-haiku-4-5).
message_body() {
  printf '{"model":"%s","max_tokens":100,"messages":[{"role":"user","content":"Hello"}]}' \
    "${1:-claude-haiku-4-5}"
}
