# SPDX-License-Identifier: Apache-2.0
# Shared setup for the black-box CLI tests: strict mode, a scratch home,
# and small assertion helpers. Source it first in every t_*.sh.
set -euo pipefail

CG=${CLAUDEGATE_BIN:?CLAUDEGATE_BIN must point at the built claudegate binary}
SCRATCH=$(mktemp -d)
export CLAUDEGATE_HOME=$SCRATCH/home
unset CLAUDEGATE_DB CLAUDEGATE_CONFIG
trap 'rm -rf "$SCRATCH"' EXIT
# The Debian interpreter carries python3-jwt; a pyenv one on PATH may not.
PY=/usr/bin/python3

fail() { echo "FAIL: $*" >&2; exit 1; }

# Run "$@" and require exit status $1; stdout in $OUT, stderr in $ERR.
expect_exit() {
  local want=$1; shift
  local status=0
  "$@" >"$SCRATCH/out" 2>"$SCRATCH/err" || status=$?
  OUT=$(cat "$SCRATCH/out"); ERR=$(cat "$SCRATCH/err")
  if [ "$status" -ne "$want" ]; then
    fail "expected exit $want, got $status from: $*
stdout: $OUT
stderr: $ERR"
  fi
}

# Require $1 (a string) to contain $2.
expect_contains() {
  case "$1" in
    *"$2"*) ;;
    *) fail "expected to find '$2' in: $1" ;;
  esac
}

expect_not_contains() {
  case "$1" in
    *"$2"*) fail "did not expect '$2' in: $1" ;;
    *) ;;
  esac
}

# The value at JSON path $2 (python expression on `d`) of JSON text $1.
json_get() {
  "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

# Octal permission bits of file $1.
mode_of() { stat -c '%a' "$1"; }

pass() { echo "PASS: $(basename "$0")"; }
