# SPDX-License-Identifier: Apache-2.0
# Shared setup for the black-box CLI tests: strict mode, a scratch home,
# and small assertion helpers. Source it first in every t_*.sh.
set -euo pipefail

CG=${CLAUDEGATE_BIN:?CLAUDEGATE_BIN must point at the built claudegate binary}
SCRATCH=$(mktemp -d)
export CLAUDEGATE_HOME=$SCRATCH/home
unset CLAUDEGATE_DB CLAUDEGATE_CONFIG
# The Debian interpreter carries python3-jwt; a pyenv one on PATH may not.
PY=/usr/bin/python3

fail() { echo "FAIL: $*" >&2; exit 1; }

# Skip the test (exit 77) saying why, or, with CI set, fail: CI must run it.
skip_or_fail() {
  if [ -n "${CI:-}" ]; then
    fail "$1 (CI is set: this test must run)"
  fi
  echo "SKIPPED: $1" >&2
  exit 77
}

# --- the store under test --------------------------------------------------
# tests/CMakeLists.txt runs a script marked "# store-backends: sqlite
# postgresql" once per backend; CLAUDEGATE_TEST_STORE names this run's.
# On postgresql, CLAUDEGATE_DB is the URI of a fresh database of the
# CLAUDEGATE_TEST_POSTGRES server (its admin URI, scripts/pg-cluster.sh),
# dropped on exit; on sqlite the store is the home's claudegate.db.
STORE_BACKEND=${CLAUDEGATE_TEST_STORE:-sqlite}
STORE_PG_DATABASES=$SCRATCH/pg_databases

# Create an empty database in the CLAUDEGATE_TEST_POSTGRES server, dropped
# when the test exits; print its URI (with the server's password).
pg_new_database() {
  [ -n "${CLAUDEGATE_TEST_POSTGRES:-}" ] || fail "pg_new_database needs CLAUDEGATE_TEST_POSTGRES"
  local name
  name="cg_$(date +%s%N)_$$_${RANDOM}"
  echo "$name" >>"$STORE_PG_DATABASES"
  psql "$CLAUDEGATE_TEST_POSTGRES" -Xq -v ON_ERROR_STOP=1 -c "CREATE DATABASE $name" >/dev/null \
    || fail "cannot create database $name in the CLAUDEGATE_TEST_POSTGRES server"
  pg_uri_of "$name"
}

# The CLAUDEGATE_TEST_POSTGRES URI with database $1 in place of its own.
pg_uri_of() {
  "$PY" -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
    "$CLAUDEGATE_TEST_POSTGRES" "$1"
}

# Drop the databases pg_new_database made (their sessions too).
pg_drop_databases() {
  [ -s "$STORE_PG_DATABASES" ] || return 0
  local name
  while read -r name; do
    psql "$CLAUDEGATE_TEST_POSTGRES" -Xq -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
  done <"$STORE_PG_DATABASES"
  : >"$STORE_PG_DATABASES"
}

# Skip or fail (skip_or_fail) unless a PostgreSQL server for the tests is at hand.
require_test_postgres() {
  [ -n "${CLAUDEGATE_TEST_POSTGRES:-}" ] \
    || skip_or_fail "no PostgreSQL server for the tests: CLAUDEGATE_TEST_POSTGRES is unset (scripts/test.sh starts one; or export it the admin URI of scripts/pg-cluster.sh start DIR)"
  command -v psql >/dev/null || skip_or_fail "psql is not installed (apt-get install postgresql-client)"
}

# SQL $1 over the store under test (sqlite3 or psql -At: rows one a line,
# columns joined by "|"); keep it portable. Its store is CLAUDEGATE_DB's,
# else the home's file or this test's database.
store_sql() {
  case "$STORE_BACKEND" in
    postgresql) psql "${CLAUDEGATE_DB:-$STORE_PG_URI}" -XAtq -v ON_ERROR_STOP=1 -c "$1" ;;
    *) sqlite3 "${CLAUDEGATE_DB:-$CLAUDEGATE_HOME/claudegate.db}" "$1" ;;
  esac
}

# The whole store's data as SQL text (sqlite3 .dump or pg_dump), to grep
# for what must never be stored.
store_dump() {
  case "$STORE_BACKEND" in
    # Without the random \restrict key newer pg_dumps write: equal data, equal text.
    postgresql) pg_dump --data-only "${CLAUDEGATE_DB:-$STORE_PG_URI}" | sed '/^\\\(un\)\{0,1\}restrict /d' ;;
    *) sqlite3 "${CLAUDEGATE_DB:-$CLAUDEGATE_HOME/claudegate.db}" .dump ;;
  esac
}

# Everything a test made: its databases, its scratch folder. A test with an
# EXIT trap of its own calls it from there.
cleanup_scratch() {
  pg_drop_databases
  rm -rf "$SCRATCH"
}
trap cleanup_scratch EXIT

case "$STORE_BACKEND" in
  sqlite) ;;
  postgresql)
    require_test_postgres
    STORE_PG_URI=$(pg_new_database) # store_sql's database when CLAUDEGATE_DB is unset
    export CLAUDEGATE_DB=$STORE_PG_URI
    ;;
  *) fail "CLAUDEGATE_TEST_STORE=$STORE_BACKEND: expected sqlite or postgresql" ;;
esac

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
