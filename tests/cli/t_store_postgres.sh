#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The PostgreSQL store from the shell: every store command works with
# --db postgresql://… and with CLAUDEGATE_DB (and the config's store key;
# --db beats it), writing to the database and creating no SQLite file; the
# password may come from the URI, PGPASSWORD or ~/.pgpass; a wrong password
# or a closed port exits 1 naming the server with the password masked, and
# no password ever shows in stdout, stderr, serve-local's log or /metrics;
# a malformed URI exits 2 saying what to fix; usage-report's totals equal a
# plain GROUP BY over the ledger table.
# store-backends: postgresql
source "$(dirname "$0")/../proxy/proxy_common.sh"

URI=$CLAUDEGATE_DB # common.sh's fresh database, with the server's password
unset CLAUDEGATE_DB
PASSWORD=$("$PY" -c 'import sys, urllib.parse as u; print(u.unquote(u.urlsplit(sys.argv[1]).password or ""))' "$URI")
[ -n "$PASSWORD" ] || fail "CLAUDEGATE_TEST_POSTGRES carries no password: $CLAUDEGATE_TEST_POSTGRES"
SERVER=$("$PY" -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.hostname, p.port, p.username)' "$URI")
read -r PG_HOST PG_PORT PG_USER <<<"$SERVER"
NO_PASSWORD_URI=$(sed -E "s|//([^:/@]+):[^@]*@|//\1@|" <<<"$URI")
sqlite_file=$CLAUDEGATE_HOME/claudegate.db

# Require stdout and stderr of the last expect_exit to be free of the password.
no_password() {
  expect_not_contains "$OUT" "$PASSWORD"
  expect_not_contains "$ERR" "$PASSWORD"
}

expect_exit 0 "$CG" keygen

# ---- every store command, by --db and by CLAUDEGATE_DB ---------------------------
# Usage: store_commands SUBJECT ARGS… (ARGS: how the store is named, or nothing)
store_commands() {
  local sub=$1
  shift
  expect_exit 0 "$CG" "$@" issue --sub "$sub" --refresh --json
  no_password
  local access refresh family jti
  access=$(json_get "$OUT" 'd["access_token"]')
  refresh=$(json_get "$OUT" 'd["refresh_token"]')
  family=$(json_get "$OUT" 'd["family_id"]')
  jti=$(json_get "$OUT" 'd["jti"]')
  [ "$(store_sql "SELECT subject FROM refresh_families WHERE family_id = '$family'")" = "$sub" ] \
    || fail "the family of $sub is not in the database"
  expect_exit 0 "$CG" "$@" verify "$access"
  expect_exit 0 "$CG" "$@" issue --refresh-token "$refresh" --json
  no_password
  local rotated
  rotated=$(json_get "$OUT" 'd["refresh_token"]')
  expect_exit 6 "$CG" "$@" issue --refresh-token "$refresh"
  expect_exit 5 "$CG" "$@" issue --refresh-token "$rotated"
  expect_exit 5 "$CG" "$@" verify "$access"
  expect_exit 0 "$CG" "$@" revoke --family "$family"

  local token
  token=$("$CG" issue --sub "$sub-2" --ttl 1s)
  expect_exit 0 "$CG" "$@" revoke --token "$token" --reason "by $sub"
  expect_exit 0 "$CG" "$@" revoke --jti "$jti-x"
  [ "$(store_sql "SELECT COUNT(*) FROM revoked_jtis WHERE jti = '$jti-x'")" = 1 ] || fail "revoke --jti did not reach the database"
  expect_exit 0 "$CG" "$@" revoke --sub "$sub-3"
  expect_exit 0 "$CG" "$@" revoke --list --json
  expect_contains "$OUT" "$jti-x"
  expect_contains "$OUT" "$sub-3"
  no_password
  expect_exit 0 "$CG" "$@" revoke --prune --json
  expect_exit 0 "$CG" "$@" issue --api-key --sub "$sub-svc" --plan free --json
  local key_id
  key_id=$(json_get "$OUT" 'd["id"]')
  expect_exit 0 "$CG" "$@" revoke --api-key "$key_id"
  [ -n "$(store_sql "SELECT revoked_at FROM api_keys WHERE id = '$key_id'")" ] || fail "the API key is not revoked in the database"
  expect_exit 0 "$CG" "$@" usage-report --by sub --format json
  no_password
  [ ! -e "$sqlite_file" ] || fail "a SQLite store appeared ($sub)"
}
store_commands flag --db "$URI"
export CLAUDEGATE_DB=$URI
store_commands env
unset CLAUDEGATE_DB

# The config's store key; --db beats it (and then the SQLite file is used).
printf 'store = "%s"\n' "$URI" >"$CLAUDEGATE_HOME/claudegate.toml"
chmod 600 "$CLAUDEGATE_HOME/claudegate.toml"
store_commands config
expect_exit 0 "$CG" --db "$SCRATCH/other.db" revoke --jti only-in-sqlite
[ -e "$SCRATCH/other.db" ] || fail "--db FILE did not beat the config's store key"
[ "$(store_sql "SELECT COUNT(*) FROM revoked_jtis WHERE jti = 'only-in-sqlite'")" = 0 ] \
  || fail "--db FILE wrote to the config's database"
rm "$CLAUDEGATE_HOME/claudegate.toml"

# ---- the password from PGPASSWORD, then from ~/.pgpass ---------------------------
expect_exit 0 env PGPASSWORD="$PASSWORD" "$CG" --db "$NO_PASSWORD_URI" revoke --jti by-pgpassword
no_password
mkdir -p "$SCRATCH/user"
printf '%s:%s:*:%s:%s\n' "$PG_HOST" "$PG_PORT" "$PG_USER" "$PASSWORD" >"$SCRATCH/user/.pgpass"
chmod 600 "$SCRATCH/user/.pgpass"
expect_exit 0 env -u PGPASSWORD HOME="$SCRATCH/user" "$CG" --db "$NO_PASSWORD_URI" revoke --jti by-pgpass
no_password
[ "$(store_sql "SELECT COUNT(*) FROM revoked_jtis WHERE jti IN ('by-pgpassword', 'by-pgpass')")" = 2 ] \
  || fail "the revocations made with PGPASSWORD and ~/.pgpass are not in the database"

# ---- connection failures: exit 1, the server named, the password masked -------
WRONG=wrong-$PASSWORD-wrong
wrong_uri=$(sed -E "s|//([^:/@]+):[^@]*@|//\1:$WRONG@|" <<<"$URI")
expect_exit 1 "$CG" --db "$wrong_uri" revoke --list
expect_contains "$ERR" "claudegate: error:"
expect_contains "$ERR" "$PG_HOST"
expect_contains "$ERR" "$PG_PORT"
expect_not_contains "$ERR" "$WRONG"
no_password
expect_exit 1 env PGPASSWORD="$WRONG" "$CG" --db "$NO_PASSWORD_URI" revoke --list
expect_not_contains "$ERR" "$WRONG"
closed=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
closed_uri=$(sed -E "s|@[^/]+/|@127.0.0.1:$closed/|" <<<"$URI")
expect_exit 1 "$CG" --db "$closed_uri" issue --sub x --refresh
expect_contains "$ERR" "$closed"
no_password
expect_exit 1 "$CG" --db "$closed_uri" usage-report
no_password
TOKEN=$("$CG" issue --sub verifier)
expect_exit 1 "$CG" --db "$closed_uri" verify "$TOKEN" # the revocation check cannot be skipped silently
no_password
expect_exit 1 "$CG" --db "$closed_uri" verify --batch <<<"$TOKEN"
no_password
expect_exit 0 "$CG" --db "$closed_uri" verify --no-revocation "$TOKEN"

# ---- malformed locations: exit 2 with the fix ------------------------------------
expect_exit 2 "$CG" --db "${URI}?no_such_option=1" revoke --list
expect_contains "$ERR" "claudegate: error:"
expect_contains "$ERR" "no_such_option"
no_password
expect_exit 2 "$CG" --db "sqlite:" revoke --list
expect_contains "$ERR" "claudegate: error:"
printf 'store = "postgresql://u:%s@h/db?no_such_option=1"\n' "$PASSWORD" >"$CLAUDEGATE_HOME/claudegate.toml"
chmod 600 "$CLAUDEGATE_HOME/claudegate.toml"
expect_exit 2 "$CG" revoke --list
expect_contains "$ERR" "claudegate.toml"
no_password
rm "$CLAUDEGATE_HOME/claudegate.toml"

# ---- serve-local: the store named masked in its log, never in /metrics ------------
export CLAUDEGATE_DB=$URI
T1=$("$CG" issue --sub alice --plan pro)
T2=$("$CG" issue --sub bob --plan pro)
start_server --mock-upstream
grep -q "store: .*$PG_HOST:$PG_PORT" "$SERVER_LOG" || fail "serve-local does not name its store: $(cat "$SERVER_LOG")"
for token in "$T1" "$T1" "$T2"; do
  call "$BASE/v1/messages" -H "x-api-key: $token" -d "$MSG"
  expect_status 200
done
call "$BASE/metrics"
expect_status 200
expect_not_contains "$BODY" "$PASSWORD"
wait_rows 3
stop_server
expect_not_contains "$(cat "$SERVER_LOG")" "$PASSWORD"
expect_exit 1 "$CG" --db "$wrong_uri" serve-local --mock-upstream --listen 127.0.0.1:0
expect_not_contains "$ERR" "$WRONG"
no_password

# ---- usage-report's totals: a plain GROUP BY over the ledger ----------------------
expect_exit 0 "$CG" usage-report --by sub --format csv --since 0
mine=$(tail -n +2 <<<"$OUT" | tr -d '\r' | cut -d, -f1-7)
theirs=$(psql -Xq --csv -t -v ON_ERROR_STOP=1 "$URI" -c "SELECT subject, COUNT(*), SUM(input_tokens),
  SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens),
  SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens)
  FROM usage_ledger GROUP BY subject ORDER BY subject" | tr -d '\r')
[ "$(wc -l <<<"$theirs")" = 2 ] || fail "expected two subjects in the ledger: $theirs"
[ "$mine" = "$theirs" ] || fail "usage-report differs from GROUP BY:
$(diff <(echo "$mine") <(echo "$theirs"))"
pass
