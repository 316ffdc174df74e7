#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The store's file system failing (tests/cli/t_store_errors.sh covers damaged
# and newer stores, t_store_locked.sh a held lock): a full disk, a read-only
# mount, the file deleted under a running serve-local. Every command fails
# closed with the store named and the fix, nothing is forwarded unmetered, and
# the store passes integrity_check afterwards. Needs root and mount (tmpfs,
# bind mounts); skipped otherwise.
source "$(dirname "$0")/../proxy/proxy_common.sh"
PROXY_DIR=$(cd "$(dirname "$0")/../proxy" && pwd) # fake_upstream.py lives there
MNT=$SCRATCH/mnt
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=1m tmpfs "$MNT" 2>/dev/null; then
  echo "SKIPPED: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)"
  exit 77
fi
MOUNTS=("$MNT")
trap 'stop_all; for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done; rm -rf "$SCRATCH"' EXIT
stop_all() { for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; }

integrity_ok() {
  [ "$(sqlite3 "$1" 'pragma integrity_check')" = ok ] || fail "integrity_check of $1 after $2"
}

# The single diagnostic line names the store $1 and $2.
names_store() {
  [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] || fail "expected one line, got: $ERR"
  expect_contains "$ERR" "claudegate: error: "
  expect_contains "$ERR" "$1"
  expect_contains "$ERR" "$2"
  [ -z "$OUT" ] || fail "wrote to stdout while failing: $OUT"
}

start_fake_upstream

# ---- a full disk (a 1 MiB tmpfs as home) ---------------------------------------
export CLAUDEGATE_HOME=$MNT/home
db=$CLAUDEGATE_HOME/claudegate.db
"$CG" keygen >/dev/null
pair=$("$CG" issue --sub ann --refresh --json)
R=$(json_get "$pair" 'd["refresh_token"]')
TOKEN=$(json_get "$pair" 'd["access_token"]')
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 200

# Fill the disk while a request is with the upstream: its usage cannot be
# settled, so the reservation stays held (the quota errs on the safe side)
# and the request log keeps the usage with the reason.
curl -s --max-time 20 -o "$SCRATCH/slow" "$BASE/v1/messages" -H "x-api-key: $TOKEN" \
  -H "anthropic-fake-sleep: 2" -d "$MSG" &
slow=$!
for ((i = 0; i < 50; i++)); do [ "$(wc -l <"$RECORD")" = 2 ] && break; sleep 0.1; done
dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null || true
wait "$slow"
expect_contains "$(cat "$SCRATCH/slow")" "hello from the fake upstream"
wait_log "could not record usage"
[ "$(grep -c '"status":200.*"input_tokens":12\|"input_tokens":12.*"status":200' "$SERVER_LOG")" = 2 ] \
  || fail "the request log lost the unsettled request's usage: $(cat "$SERVER_LOG")"

# With the disk full a request is refused before it is forwarded.
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 503
expect_envelope api_error
[ "$(wc -l <"$RECORD")" = 2 ] || fail "forwarded while the usage could not be metered"
curl -sf --max-time 5 "$BASE/healthz" >/dev/null || fail "serve-local stopped serving on a full disk"

# CLI writes fail with the store named and the disk given as the cause.
expect_exit 1 "$CG" issue --sub bea --refresh
names_store "$db" "disk"
expect_exit 1 "$CG" issue --refresh-token "$R"
names_store "$db" "disk"
expect_exit 1 "$CG" revoke --jti full-disk-jti
names_store "$db" "disk"
stop_server
rm -f "$MNT/filler"
integrity_ok "$db" "a full disk"
[ "$(ledger 'select count(*) from usage_ledger')" = 1 ] || fail "ledger: $(ledger 'select * from usage_ledger')"
# The unrecorded usage stays held by the lease it came from (until the lease expires) and is in the log.
[ "$(ledger 'select count(*) from quota_leases')" = 1 ] || fail "the lease of the unrecorded usage was dropped"
wait_log "usage not recorded"
[ "$(ledger "select count(*) from revoked_jtis where jti = 'full-disk-jti'")" = 0 ] || fail "half a revocation"
expect_exit 0 "$CG" issue --refresh-token "$R" # the failed rotation did not use it up

# ---- a read-only store (bind mount remounted ro) -----------------------------------
RO=$SCRATCH/ro
mkdir -p "$RO"
if mount --bind "$MNT" "$RO" 2>/dev/null && mount -o remount,ro,bind "$RO" 2>/dev/null; then
  MOUNTS=("$RO" "${MOUNTS[@]}")
  sum=$(sha256sum "$db")
  TOKEN=$("$CG" issue --sub ann)
  export CLAUDEGATE_HOME=$RO/home
  expect_exit 1 "$CG" verify "$TOKEN" # the revocation check cannot run: not valid
  names_store "$RO/home/claudegate.db" "writable"
  expect_exit 1 "$CG" revoke --jti ro-jti
  names_store "$RO/home/claudegate.db" "writable"
  expect_exit 1 "$CG" issue --sub ann --refresh
  names_store "$RO/home/claudegate.db" "writable"
  expect_exit 1 env ANTHROPIC_API_KEY=sk-ant-server-key "$CG" serve-local --listen 127.0.0.1:0 \
    --upstream "$UPSTREAM_URL"
  expect_contains "$ERR" "$RO/home/claudegate.db"
  [ "$(sha256sum "$db")" = "$sum" ] || fail "the read-only store changed"
  umount "$RO"
  export CLAUDEGATE_HOME=$MNT/home
else
  echo "SKIPPED (read-only store): mount --bind / remount,ro not permitted here"
fi

# ---- the store deleted under a running serve-local ---------------------------------
TOKEN=$("$CG" issue --sub cid)
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 200
forwarded=$(wc -l <"$RECORD")
rm "$db"
# Reservations come from a lease in memory and rows are written behind the
# request: the first request after the deletion may still be served (its
# usage logged as not recorded); once the ledger write has failed, none is.
for ((i = 0; i < 20; i++)); do
  call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
  case $STATUS in 500 | 503) break ;; esac
  sleep 0.1
done
# 500 (the ledger cannot be written) or, once the revocation state is over
# 1 s old, 503 (the store does not answer).
case $STATUS in 500 | 503) ;; *) fail "expected 500 or 503 once the store was deleted, got $STATUS: $BODY" ;; esac
expect_envelope api_error
[ "$(wc -l <"$RECORD")" -le $((forwarded + 1)) ] || fail "forwarded after the store was known deleted"
# The client is told only to retry; the operator's log says why.
logged_cause() { grep '"error":"store .*was deleted or replaced' "$SERVER_LOG" | grep -q '"status":50[03]'; }
for ((i = 0; i < 50; i++)); do logged_cause && break; sleep 0.1; done
logged_cause ||
  fail "the request log does not say why the request failed: $(tail -3 "$SERVER_LOG")"
curl -sf --max-time 5 "$BASE/healthz" >/dev/null || fail "serve-local died when its store was deleted"
stop_server
pass
