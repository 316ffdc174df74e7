#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# 16 processes rotate the same refresh token at once: exactly one succeeds,
# the rest see reuse (6, error code refresh_reuse) or the family it revoked
# (5, revoked), the family ends revoked with no active token, the store
# passes integrity_check, and no SQLITE_BUSY (or lock error) reaches anyone.
# store-backends: sqlite postgresql
source "$(dirname "$0")/common.sh"
if [ "$STORE_BACKEND" = sqlite ]; then
  command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 missing"; exit 77; }
fi
expect_exit 0 "$CG" keygen
out=$("$CG" issue --sub racer --refresh --json)
R0=$(json_get "$out" 'd["refresh_token"]')
A0=$(json_get "$out" 'd["access_token"]')
FID=$(json_get "$out" 'd["family_id"]')

n=16
for i in $(seq 1 $n); do
  ( status=0; "$CG" issue --refresh-token "$R0" --json >"$SCRATCH/out.$i" 2>"$SCRATCH/err.$i" || status=$?
    echo $status >"$SCRATCH/status.$i" ) &
done
wait

successes=0
for i in $(seq 1 $n); do
  s=$(cat "$SCRATCH/status.$i")
  case "$s" in
    0) successes=$((successes + 1)); winner=$i ;;
    5) [ "$(json_get "$(cat "$SCRATCH/err.$i")" 'd["error"]["code"]')" = revoked ] \
      || fail "process $i exited 5 with: $(cat "$SCRATCH/err.$i")" ;;
    6) [ "$(json_get "$(cat "$SCRATCH/err.$i")" 'd["error"]["code"]')" = refresh_reuse ] \
      || fail "process $i exited 6 with: $(cat "$SCRATCH/err.$i")" ;;
    *) fail "process $i exited $s: $(cat "$SCRATCH/err.$i")" ;;
  esac
  # Whole words: the errors (on stderr, --json too) carry a random family id.
  ! grep -qiwE 'busy|locked|sqlite_busy|sqlite_locked|deadlock|serialize' "$SCRATCH/err.$i" \
    || fail "process $i saw: $(cat "$SCRATCH/err.$i")"
done
[ "$successes" = 1 ] || fail "$successes rotations succeeded, want exactly 1"
grep -l . "$SCRATCH"/status.* >/dev/null
[ "$(cat "$SCRATCH"/status.* | grep -c '^6$')" -ge 1 ] || fail "nobody detected the reuse"

# The family is revoked: the winner's pair and the original access token are dead.
A1=$(json_get "$(cat "$SCRATCH/out.$winner")" 'd["access_token"]')
R1=$(json_get "$(cat "$SCRATCH/out.$winner")" 'd["refresh_token"]')
expect_exit 5 "$CG" verify "$A1"
expect_exit 5 "$CG" verify "$A0"
expect_exit 5 "$CG" issue --refresh-token "$R1"
[ "$(store_sql "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = '$FID' AND state = 'active'")" = 0 ] \
  || fail "a revoked family keeps an active token: $(store_sql "SELECT * FROM refresh_tokens")"
[ -n "$(store_sql "SELECT revoked_at FROM refresh_families WHERE family_id = '$FID'")" ] \
  || fail "the family is not marked revoked: $(store_sql "SELECT * FROM refresh_families")"
if [ "$STORE_BACKEND" = sqlite ]; then
  [ "$(store_sql 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
fi
pass
