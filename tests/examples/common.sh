# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared by the examples' smoke tests: run examples/NAME/run.sh against the
# built binary with a scratch TMPDIR, pass a skip (exit 77) on, and check that
# the example succeeded, printed what its README promises and cleaned up.
set -euo pipefail

: "${CLAUDEGATE_BIN:?CLAUDEGATE_BIN must point at the built claudegate binary}"
: "${CLAUDEGATE_SOURCE_DIR:?CLAUDEGATE_SOURCE_DIR must point at the source tree}"
export CLAUDEGATE_BIN
unset CLAUDEGATE_HOME CLAUDEGATE_DB CLAUDEGATE_CONFIG
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Run examples/$1/run.sh; its stdout and stderr in $OUT. Exits 77 when the example skips.
run_example() {
  local dir=$CLAUDEGATE_SOURCE_DIR/examples/$1 status=0
  [ -x "$dir/run.sh" ] || fail "$dir/run.sh is missing or not executable"
  grep -q 'run.sh' "$dir/README.md" || fail "$dir/README.md does not say how to run the example"
  mkdir -p "$SCRATCH/tmp"
  OUT=$(cd "$SCRATCH" && TMPDIR=$SCRATCH/tmp "$dir/run.sh" 2>&1 </dev/null) || status=$?
  echo "$OUT"
  if [ "$status" -eq 77 ]; then
    exit 77
  fi
  [ "$status" -eq 0 ] || fail "examples/$1/run.sh exited $status"
  expect_output "$1 example: all checks passed"
  # The throwaway home (and anything else under TMPDIR) is gone after the run.
  [ -z "$(ls -A "$SCRATCH/tmp")" ] || fail "examples/$1 left files behind: $(ls -A "$SCRATCH/tmp")"
}

# Require the example's output to contain $1.
expect_output() {
  case "$OUT" in
    *"$1"*) ;;
    *) fail "expected the example to print '$1'" ;;
  esac
}

pass() { echo "PASS: $(basename "$0")"; }
