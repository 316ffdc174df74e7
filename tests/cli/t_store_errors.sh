#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A store from a newer claudegate is refused and left unchanged; a corrupt or
# unreadable store is a clear error (exit 1), never a crash.
# store-backends: sqlite postgresql
source "$(dirname "$0")/common.sh"
if [ "$STORE_BACKEND" = postgresql ]; then
  # A database of a newer claudegate: refused (exit 1), named with the
  # password masked, not changed. Files that are no database are SQLite's.
  expect_exit 0 "$CG" revoke --jti first
  store_sql 'UPDATE claudegate_schema SET version = 999'
  before=$(store_dump)
  expect_exit 1 "$CG" revoke --list
  expect_contains "$ERR" "newer"
  expect_contains "$ERR" "$(sed -E 's|//([^:/@]+):[^@]*@|//\1:***@|' <<<"$CLAUDEGATE_DB")"
  expect_exit 1 "$CG" revoke --jti second
  [ "$(store_dump)" = "$before" ] || fail "a newer store was modified: $(diff <(echo "$before") <(store_dump))"
  pass
  exit 0
fi
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 missing"; exit 77; }
expect_exit 0 "$CG" keygen
expect_exit 0 "$CG" revoke --jti first
db=$CLAUDEGATE_HOME/claudegate.db

sqlite3 "$db" 'PRAGMA user_version = 999'
before=$(sha256sum "$db")
expect_exit 1 "$CG" revoke --list
expect_contains "$ERR" "newer"
expect_contains "$ERR" "$db"
[ "$(sha256sum "$db")" = "$before" ] || fail "a newer store was modified"

export CLAUDEGATE_DB=$SCRATCH/corrupt.db
head -c 65536 /dev/urandom > "$CLAUDEGATE_DB"
expect_exit 1 "$CG" revoke --list
expect_contains "$ERR" "corrupt.db"

export CLAUDEGATE_DB=$SCRATCH/text.db
printf 'this is not a database, it is a text file that someone put here\n%.0s' $(seq 1 100) > "$CLAUDEGATE_DB"
expect_exit 1 "$CG" revoke --list
expect_contains "$ERR" "text.db"

if [ "$(id -u)" != 0 ]; then
  export CLAUDEGATE_DB=$SCRATCH/locked.db
  "$CG" revoke --jti x >/dev/null
  chmod 000 "$CLAUDEGATE_DB"
  expect_exit 1 "$CG" revoke --list
  expect_contains "$ERR" "locked.db"
fi
pass
