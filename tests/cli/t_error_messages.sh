#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every failure an operator can cause gets one line on stderr that names the
# problem and the fix, with the documented exit status (DESIGN.md §6).
source "$(dirname "$0")/common.sh"

# Require the single diagnostic line in $ERR to contain every argument.
one_line_naming() {
  [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] || fail "expected one line, got: $ERR"
  expect_contains "$ERR" "claudegate: error: "
  for part in "$@"; do expect_contains "$ERR" "$part"; done
}

# No key yet.
expect_exit 2 "$CG" issue --sub ci
one_line_naming "no signing key yet" "run: claudegate keygen"
expect_exit 2 "$CG" verify a.b.c
one_line_naming "no verification keys" "claudegate keygen"

# Missing home: read-only commands do not create it.
expect_exit 2 "$CG" --home "$SCRATCH/absent" verify a.b.c
[ ! -e "$SCRATCH/absent" ] || fail "verify created a missing home"

# A file where the home should be.
touch "$SCRATCH/in-the-way"
expect_exit 1 "$CG" --home "$SCRATCH/in-the-way" keygen
one_line_naming "$SCRATCH/in-the-way" "move it away"

"$CG" keygen >/dev/null
key_file=$(ls "$CLAUDEGATE_HOME"/keys/*.pem | head -1)

# Bad duration, bad time, unknown plan.
expect_exit 2 "$CG" issue --sub ci --ttl 5x
one_line_naming '--ttl' '"5x"' "15m"
expect_exit 2 "$CG" verify --at yesterday a.b.c
one_line_naming '"yesterday"' "RFC 3339"
expect_exit 2 "$CG" issue --sub ci --plan gold
one_line_naming 'unknown plan "gold"' "known plans: admin, free, pro" "[plans.NAME]"

# Wrong permissions on a private key, like ssh.
chmod 644 "$key_file"
expect_exit 1 "$CG" issue --sub ci
one_line_naming "$key_file" "mode 0644" "chmod 600"
chmod 600 "$key_file"

# Unreadable key file: a damaged one for everyone, a mode-000 one when not root.
cp "$key_file" "$SCRATCH/key.bak"
echo "not a key" >"$key_file"
expect_exit 1 "$CG" issue --sub ci
one_line_naming "$key_file" "restore it from a backup"
cp "$SCRATCH/key.bak" "$key_file"
if [ "$(id -u)" -ne 0 ]; then
  chmod 000 "$key_file"
  expect_exit 1 "$CG" issue --sub ci
  one_line_naming "$key_file"
  chmod 600 "$key_file"
fi

# Corrupt database: named, the fix given, and the file left as it was.
"$CG" issue --sub ci --refresh >/dev/null
db=$CLAUDEGATE_HOME/claudegate.db
cp "$db" "$SCRATCH/db.bak"
printf 'garbage%.0s' {1..1000} >"$db"
sum=$(sha256sum "$db")
expect_exit 1 "$CG" revoke --jti some-jti
one_line_naming "$db" "not a claudegate store or is damaged" "restore a backup"
[ "$(sha256sum "$db")" = "$sum" ] || fail "the damaged store was modified"
cp "$SCRATCH/db.bak" "$db"

# Missing API key, and a port already in use.
expect_exit 2 env -u ANTHROPIC_API_KEY "$CG" serve-local --listen 127.0.0.1:0
one_line_naming "no Anthropic API key" "ANTHROPIC_API_KEY" "--api-key-file" "--mock-upstream"
"$PY" - >"$SCRATCH/port" <<'PYEOF' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(30)
PYEOF
holder=$!
for ((i = 0; i < 50; i++)); do [ -s "$SCRATCH/port" ] && break; sleep 0.1; done
port=$(cat "$SCRATCH/port")
expect_exit 1 timeout 10 "$CG" serve-local --mock-upstream --listen "127.0.0.1:$port"
expect_contains "$ERR" "cannot listen on 127.0.0.1:$port"
expect_contains "$ERR" "--listen HOST:PORT"
kill "$holder" 2>/dev/null || true

# A store locked by another process: the wait ends with the cause and the fix
# (after the 30 s busy timeout), and nothing is half-written.
"$PY" - "$db" >"$SCRATCH/locked" <<'PYEOF' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(45)
PYEOF
locker=$!
for ((i = 0; i < 50; i++)); do [ -s "$SCRATCH/locked" ] && break; sleep 0.1; done
expect_exit 1 "$CG" revoke --jti locked-jti
one_line_naming "$db" "another process holds the store" "retry"
kill "$locker" 2>/dev/null || true
wait "$locker" 2>/dev/null || true
expect_exit 0 "$CG" revoke --list --json
expect_not_contains "$OUT" "locked-jti"
pass
