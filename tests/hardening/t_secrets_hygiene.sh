#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Secrets never leak through failure paths: after bad, expired and revoked
# tokens, refresh-token reuse, an unreachable upstream and failing OpenSSL,
# nothing claudegate wrote (stdout/stderr of commands, serve-local's log and
# request log, /metrics, error envelopes and headers, every table of the
# store including audit_events) holds an access token or its signature, a
# refresh token, private key material or the upstream API key; and the home,
# keys, store and log files are private.
source "$(dirname "$0")/../proxy/proxy_common.sh"
PROXY_DIR=$(cd "$(dirname "$0")/../proxy" && pwd) # fake_upstream.py lives there
source "$(dirname "$0")/secrets.sh"
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

printf 'leeway = "0s"\n' >"$SCRATCH/claudegate.toml"
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
OUTS=$SCRATCH/outputs
mkdir -p "$OUTS"
# Keep the last command's (or call's) output as $OUTS/$1.*, for the final scan.
keep() {
  printf '%s' "${OUT-}" >"$OUTS/$1.out"
  printf '%s' "${ERR-}" >"$OUTS/$1.err"
}
keep_call() {
  printf '%s' "$BODY" >"$OUTS/$1.body"
  printf '%s' "$HEADERS" >"$OUTS/$1.headers"
}
token_of() { json_get "$1" 'd["access_token"]'; }

# ---- minting (its stdout is where secrets are meant to go: not scanned) ----
expect_exit 0 "$CG" keygen
keep keygen
secret_keys "$CLAUDEGATE_HOME"
TOKEN=$("$CG" issue --sub eve --plan pro)
secret_token "$TOKEN"
pair=$("$CG" issue --sub eve --plan pro --refresh --json)
R=$(json_get "$pair" 'd["refresh_token"]')
secret_value "$R"
secret_token "$(token_of "$pair")"
EXPIRING=$("$CG" issue --sub eve --plan pro --ttl 1s)
secret_token "$EXPIRING"
REVOKED=$("$CG" issue --sub eve --plan pro)
secret_token "$REVOKED"
# A forged token: a valid header and payload with another signature.
sig=${TOKEN##*.}
BAD=${TOKEN%.*}.$(printf '%s' "$sig" | tr 'A-Za-z' 'B-ZAb-za')
secret_token "$BAD"
API_KEY=sk-ant-api03-hygiene-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
secret_value "$API_KEY"
(umask 077 && printf '%s\n' "$API_KEY" >"$SCRATCH/api-key")

# ---- CLI failure paths ----
expect_exit 3 "$CG" verify "$BAD"
keep verify-bad
expect_exit 3 "$CG" verify --json "$BAD"
keep verify-bad-json
expect_exit 4 "$CG" verify --at "$(($(date +%s) + 3600))" "$TOKEN"
keep verify-expired
expect_exit 0 "$CG" revoke --token - --reason "hygiene test" <<<"$REVOKED"
keep revoke
expect_exit 5 "$CG" verify "$REVOKED"
keep verify-revoked
rotated=$("$CG" issue --refresh-token "$R" --json)
secret_value "$(json_get "$rotated" 'd["refresh_token"]')"
secret_token "$(token_of "$rotated")"
expect_exit 6 "$CG" issue --refresh-token "$R"
keep refresh-reuse
expect_exit 5 "$CG" issue --refresh-token - --json <<<"$R" # the family is revoked by now
keep refresh-revoked-json
expect_exit 0 "$CG" revoke --list --json
keep revoke-list
if [ -f "${CLAUDEGATE_OPENSSL_FAIL_SHIM:-}" ]; then
  expect_exit 3 env LD_PRELOAD="$CLAUDEGATE_OPENSSL_FAIL_SHIM" CLAUDEGATE_OPENSSL_FAIL=EVP_DigestVerify \
    "$CG" verify "$TOKEN"
  keep openssl-verify
  expect_exit 1 env LD_PRELOAD="$CLAUDEGATE_OPENSSL_FAIL_SHIM" CLAUDEGATE_OPENSSL_FAIL=EVP_DigestSign \
    "$CG" issue --sub eve --refresh
  keep openssl-issue
else
  echo "SKIPPED (OpenSSL failures): CLAUDEGATE_OPENSSL_FAIL_SHIM not set"
fi

# ---- serve-local failure paths ----
start_fake_upstream
LOG=$OUTS/requests.log
start_server --upstream "$UPSTREAM_URL" --api-key-file "$SCRATCH/api-key" --log "$LOG"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 200
grep -qF "$API_KEY" "$RECORD" || fail "the upstream never got the API key: the scan below would prove nothing"
sleep 1.1 # EXPIRING (1 s, leeway 0) is now expired
for presented in BAD EXPIRING REVOKED; do
  call "$BASE/v1/messages" -H "authorization: Bearer ${!presented}" -d "$MSG"
  expect_status 401
  keep_call "proxy-$presented"
done
call "$BASE/auth/refresh" -d "{\"refresh_token\":\"$R\"}"
expect_status 401
keep_call proxy-refresh-reuse
call "$BASE/metrics"
expect_status 200
keep_call metrics
stop_server
cp "$SERVER_LOG" "$OUTS/server.stderr"

start_server --upstream "http://127.0.0.1:1" --api-key-file "$SCRATCH/api-key" # nothing listens on port 1
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 502
keep_call proxy-upstream-down
stop_server
cp "$SERVER_LOG" "$OUTS/server-down.stderr"

# ---- the store, every table (audit_events holds the reuse) ----
db=$CLAUDEGATE_HOME/claudegate.db
[ "$(ledger "select count(*) from audit_events where kind = 'refresh_reuse'")" -ge 1 ] || fail "reuse not audited"
sqlite3 "$db" .dump >"$OUTS/store.dump"

assert_no_secrets "$OUTS"/*

# ---- file modes (DESIGN.md §7) ----
[ "$(mode_of "$CLAUDEGATE_HOME")" = 700 ] || fail "home mode $(mode_of "$CLAUDEGATE_HOME")"
[ "$(mode_of "$CLAUDEGATE_HOME/keys")" = 700 ] || fail "keys/ mode $(mode_of "$CLAUDEGATE_HOME/keys")"
for f in "$CLAUDEGATE_HOME"/keys/* "$db"* "$LOG"; do
  [ "$(mode_of "$f")" = 600 ] || fail "$f has mode $(mode_of "$f")"
done
pass
