#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 rotations and revocations at random moments, many times: the store
# always reopens, passes integrity_check, and every rotation that returned a
# token to its caller is present (that token rotates again).
source "$(dirname "$0")/common.sh"
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 missing"; exit 77; }
expect_exit 0 "$CG" keygen
db=$CLAUDEGATE_HOME/claudegate.db
rounds=${CRASH_ROUNDS:-40}
completed=0 killed=0

# Kill at a random moment within about twice one rotation's run time, so the
# kills land before, inside and after the transaction on fast and slow
# (sanitizer) builds alike.
R=$("$CG" issue --sub calibrate --refresh --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
started=$(date +%s%N)
"$CG" issue --refresh-token "$R" --json >/dev/null
span_ms=$(( ($(date +%s%N) - started) / 1000000 * 2 + 10 ))

for i in $(seq 1 "$rounds"); do
  R=$("$CG" issue --sub "crash-$i" --refresh --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
  "$CG" issue --refresh-token "$R" --json >"$SCRATCH/rot" 2>/dev/null &
  rot=$!
  "$CG" revoke --jti "jti-$i" --reason crash-test >/dev/null 2>&1 &
  rev=$!
  sleep "$("$PY" -c "import sys; print(int(sys.argv[1]) / 1000)" "$(( RANDOM % span_ms ))")"
  kill -9 "$rot" "$rev" 2>/dev/null && killed=$((killed + 1)) || true
  status=0; wait "$rot" || status=$?
  wait "$rev" 2>/dev/null || true
  [ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after round $i"
  if [ "$status" = 0 ]; then
    # The caller holds R1: the store must know it as the family's active token.
    completed=$((completed + 1))
    R1=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["refresh_token"])' "$SCRATCH/rot")
    expect_exit 0 "$CG" issue --refresh-token "$R1"
  fi
  expect_exit 0 "$CG" revoke --list --json   # reopens cleanly
done
echo "rounds=$rounds completed=$completed killed=$killed"
[ "$completed" -gt 0 ] || fail "no rotation completed; the kill delay is too short to test anything"
pass
