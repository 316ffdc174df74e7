#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue 13 item 10: what another local user could have written or
# redirected is refused, as ssh's StrictModes does. A home, keys/, key file,
# store (and its -wal/-shm) or config writable by group/others or owned by
# someone else → exit 2 naming the path, its mode and owner and the fix;
# the store, keys and --log are never opened through a symbolic link; and a
# running gateway never swaps in a keys/ folder that fails these checks.
source "$(dirname "$0")/../proxy/proxy_common.sh"

H=$CLAUDEGATE_HOME
DB=$H/claudegate.db
expect_exit 0 "$CG" keygen
KID=$OUT
KEY=$H/keys/$KID.pem
expect_exit 0 "$CG" issue --sub alice --refresh
[ -f "$DB" ] || fail "no store at $DB"

# $1 = what must be named, then the fix; runs "$CG" "${@:3}" expecting exit 2.
refused() {
  local named=$1 fix=$2; shift 2
  expect_exit 2 "$CG" "$@"
  expect_contains "$ERR" "claudegate: error: $named"
  expect_contains "$ERR" "$fix"
  [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] || fail "expected one line, got: $ERR"
}

# ---- writable by group/others: the chmod fix ----
chmod 777 "$H"
refused "home $H is writable by group and others (mode 0777, owner $(id -un))" "run: chmod 700 $H" \
  issue --sub mallory --plan admin
chmod 1777 "$H" # a sticky shared home is no better: others still add entries
refused "home $H is writable by group and others (mode 1777" "run: chmod 700 $H" revoke --list
chmod 700 "$H"

chmod 777 "$H/keys"
refused "keys folder $H/keys is writable by group and others (mode 0777" "run: chmod 700 $H/keys" \
  issue --sub mallory
chmod 700 "$H/keys"

chmod 666 "$KEY"
refused "key file $KEY is writable by group and others (mode 0666" "run: chmod 600 $KEY" issue --sub mallory
chmod 600 "$KEY"

chmod 620 "$H/keys/index.json"
refused "keys index $H/keys/index.json is writable by group (mode 0620" "run: chmod 600" jwks
chmod 600 "$H/keys/index.json"

chmod 666 "$DB"
refused "store $DB is writable by group and others (mode 0666" "run: chmod 600 $DB" revoke --list
chmod 600 "$DB"

: >"$DB-wal"
chmod 666 "$DB-wal"
refused "store $DB-wal is writable by group and others (mode 0666" "run: chmod 600 $DB-wal" revoke --list
rm -f "$DB-wal"

printf 'issuer = "claudegate"\n' >"$H/claudegate.toml"
chmod 666 "$H/claudegate.toml"
refused "config file $H/claudegate.toml is writable by group and others (mode 0666" \
  "run: chmod 600 $H/claudegate.toml" issue --sub mallory
chmod 644 "$H/claudegate.toml" # readable by others is fine for a config
expect_exit 0 "$CG" issue --sub alice

# An explicit --config / --db in a shared sticky folder is fine when the file itself is safe.
SHARED=$SCRATCH/shared
mkdir -m 1777 "$SHARED"
printf 'issuer = "claudegate"\n' >"$SHARED/cg.toml"
expect_exit 0 "$CG" --config "$SHARED/cg.toml" --db "$SHARED/cg.db" revoke --list
[ "$(mode_of "$SHARED/cg.db")" = 600 ] || fail "new store mode $(mode_of "$SHARED/cg.db")"

# ---- symbolic links: never followed for the store, keys and the log ----
ln -s "$DB" "$SHARED/link.db"
refused "store $SHARED/link.db is a symbolic link (to $DB" "replace the link" --db "$SHARED/link.db" revoke --list
ln -s "$SHARED/nothing.db" "$SHARED/dangling.db"
refused "store $SHARED/dangling.db is a symbolic link" "replace the link" --db "$SHARED/dangling.db" revoke --list
[ ! -e "$SHARED/nothing.db" ] || fail "a store was created through a dangling link"

mv "$KEY" "$SCRATCH/key.pem"
ln -s "$SCRATCH/key.pem" "$KEY"
refused "key file $KEY is a symbolic link" "replace the link" issue --sub alice
rm "$KEY"
mv "$SCRATCH/key.pem" "$KEY"

printf 'precious\n' >"$SCRATCH/victim"
ln -s "$SCRATCH/victim" "$SCRATCH/requests.log"
refused "log file $SCRATCH/requests.log is a symbolic link (to $SCRATCH/victim" "replace the link" \
  serve-local --mock-upstream --listen 127.0.0.1:0 --log "$SCRATCH/requests.log"
[ "$(cat "$SCRATCH/victim")" = precious ] || fail "the log was written through a link"

# ---- owned by another user: the chown fix (needs root to make one) ----
if [ "$(id -u)" = 0 ]; then
  chown 65534 "$DB"
  refused "store $DB is not owned by root (mode 0600, owner " "run: chown root $DB" revoke --list
  chown 0 "$DB"
  chown 65534 "$H"
  refused "home $H is not owned by root (mode 0700, owner " "run: chown root $H" issue --sub alice
  chown 0 "$H"
  chown 65534 "$H/claudegate.toml"
  refused "config file $H/claudegate.toml is not owned by root" "run: chown root $H/claudegate.toml" \
    issue --sub alice
  chown 0 "$H/claudegate.toml"
else
  echo "SKIPPED (foreign owner): chown needs root"
fi
expect_exit 0 "$CG" issue --sub alice
LEGIT=$OUT

# ---- a running gateway does not pick up a swapped keys/ folder ----
MALLORY=$SCRATCH/mallory
CLAUDEGATE_HOME=$MALLORY "$CG" keygen >/dev/null
FORGED=$(CLAUDEGATE_HOME=$MALLORY "$CG" issue --sub mallory --plan admin)
# Fifteen refusals from one IP: above the lockout threshold, which is not what this checks.
printf '[serve.lockout]\nfailures_per_minute = 1000\n' >>"$H/claudegate.toml"
start_server --mock-upstream
call "$BASE/v1/models" -H "x-api-key: $LEGIT"
expect_status 200
mv "$H/keys" "$H/keys.orig"
ln -s "$MALLORY/keys" "$H/keys"
# The gateway looks at keys/ every 0.5 s; the forged token must stay refused well past that.
for _ in $(seq 1 15); do
  call "$BASE/v1/models" -H "x-api-key: $FORGED"
  expect_status 401
  sleep 0.2
done
call "$BASE/v1/models" -H "x-api-key: $LEGIT"
expect_status 200
stop_server
pass
