#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Where the store lives, without a database server: --db and CLAUDEGATE_DB
# take a path or sqlite:PATH, the config's store key too (flag and env beat
# it); verify --batch and serve-local open the same location; "sqlite:"
# alone or a URI libpq cannot read exit 2; a PostgreSQL server that cannot
# be reached exits 1 naming it, the password masked everywhere.
source "$(dirname "$0")/common.sh"
expect_exit 0 "$CG" keygen
TOKEN=$("$CG" issue --sub alice)
JTI=$(json_get "$("$CG" inspect --json "$TOKEN" 2>/dev/null)" 'd["claims"]["jti"]')
home_db=$CLAUDEGATE_HOME/claudegate.db

# sqlite:PATH is the file PATH.
expect_exit 0 "$CG" --db "sqlite:$SCRATCH/a.db" revoke --jti "$JTI"
[ -s "$SCRATCH/a.db" ] || fail "--db sqlite:PATH did not create PATH"
expect_exit 5 "$CG" --db "$SCRATCH/a.db" verify "$TOKEN"
expect_exit 5 env CLAUDEGATE_DB="sqlite:$SCRATCH/a.db" "$CG" verify --batch <<<"$TOKEN"
[ "$(json_get "$OUT" 'd["code"]')" = revoked ] || fail "verify --batch did not read sqlite:PATH: $OUT"
expect_exit 0 "$CG" verify "$TOKEN"
[ ! -e "$home_db" ] || fail "verify created the home's store"

# The config's store key; CLAUDEGATE_DB and --db beat it.
printf 'store = "sqlite:%s"\n' "$SCRATCH/config.db" >"$CLAUDEGATE_HOME/claudegate.toml"
expect_exit 0 "$CG" revoke --jti from-config
[ -s "$SCRATCH/config.db" ] || fail "the config's store key was not used"
expect_exit 0 env CLAUDEGATE_DB="$SCRATCH/env.db" "$CG" revoke --list --json
[ -s "$SCRATCH/env.db" ] || fail "CLAUDEGATE_DB did not beat the config's store key"
expect_exit 0 "$CG" --db "$SCRATCH/flag.db" revoke --list --json
[ -s "$SCRATCH/flag.db" ] || fail "--db did not beat the config's store key"
expect_exit 0 "$CG" revoke --list --json
expect_contains "$OUT" from-config
expect_not_contains "$OUT" "$JTI"
printf 'store = 5\n' >"$CLAUDEGATE_HOME/claudegate.toml"
expect_exit 2 "$CG" revoke --list
expect_contains "$ERR" "store"
printf 'store = "sqlite:"\n' >"$CLAUDEGATE_HOME/claudegate.toml"
expect_exit 2 "$CG" revoke --list
expect_contains "$ERR" "claudegate.toml"
rm "$CLAUDEGATE_HOME/claudegate.toml"
[ ! -e "$home_db" ] || fail "the home's store was created while another was named"

# Malformed locations are usage errors; the password never shows.
expect_exit 2 "$CG" --db "sqlite:" revoke --list
expect_contains "$ERR" "claudegate: error:"
expect_exit 2 "$CG" --db "postgresql://gate:hunter2secret@127.0.0.1/db?no_such_option=1" revoke --list
expect_contains "$ERR" "no_such_option"
expect_not_contains "$ERR" "hunter2secret"

# A server that is not there: exit 1, named, masked; also serve-local.
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
uri="postgresql://gate:hunter2secret@127.0.0.1:$port/claudegate?connect_timeout=5"
for args in "revoke --list" "issue --sub carol --refresh" "usage-report" "verify $TOKEN" \
  "serve-local --mock-upstream --listen 127.0.0.1:0"; do
  # shellcheck disable=SC2086 # the words of $args
  expect_exit 1 "$CG" --db "$uri" $args
  expect_contains "$ERR" "claudegate: error:"
  expect_contains "$ERR" "127.0.0.1:$port"
  expect_not_contains "$ERR$OUT" "hunter2secret"
done

# serve-local names its store on startup.
command -v curl >/dev/null || { echo "SKIPPED: curl not installed"; exit 77; }
source "$(dirname "$0")/../../scripts/lib/serve_local.sh"
"$CG" --db "sqlite:$SCRATCH/served.db" serve-local --mock-upstream --listen 127.0.0.1:0 2>"$SCRATCH/serve.log" &
pid=$!
serve_local_url "$SCRATCH/serve.log" "$pid" >/dev/null || fail "serve-local did not start"
kill -TERM "$pid"
wait "$pid" || true
grep -qx "claudegate: store: $SCRATCH/served.db" "$SCRATCH/serve.log" \
  || fail "serve-local does not name its store: $(cat "$SCRATCH/serve.log")"
pass
