#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Brute-force protection: ten failed authentications in a minute from one
# IP lock it out of the authentication routes (429 rate_limit_error with
# retry-after, a good token included, /auth/refresh too) while another
# loopback address (127.0.0.2) is unaffected; each failure is logged with
# IP, route and reason, never the credential, and counted in /metrics; a
# short configured lockout expires and the next one is the longer repeat.
source "$(dirname "$0")/proxy_common.sh"
# All of 127.0.0.0/8 is loopback on Linux; elsewhere another source address may not exist.
probe=0
curl -s --max-time 5 --interface 127.0.0.2 -o /dev/null http://127.0.0.1:1/ 2>/dev/null || probe=$?
[ "$probe" = 45 ] && { echo "SKIPPED: cannot send from 127.0.0.2"; exit 77; }

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub bob --plan free)
sig=${TOKEN##*.}
[ "${sig:0:1}" = A ] && flip=B || flip=A
BAD="${TOKEN%.*}.$flip${sig:1}"
KEY_SECRET=S3CRETs3cretS3CRETs3cret
BAD_KEY="cgk_k7x_$KEY_SECRET"
start_fake_upstream
export ANTHROPIC_API_KEY=sk-ant-server-key
start_server --upstream "$UPSTREAM_URL"

metric() { curl -s --max-time 5 "$BASE/metrics" | grep -E "^$1 " | awk '{print $2}'; }

# Ten failures (the default threshold) are answered 401, one by one.
for i in 1 2 3 4 5 6 7 8; do
  call "$BASE/v1/messages" -H "x-api-key: $BAD" -d "$MSG"
  expect_status 401
done
call "$BASE/v1/models" -H "Authorization: Bearer $BAD_KEY"
expect_status 401
call "$BASE/v1/messages/count_tokens" -H "x-api-key: $BAD" -d "$MSG"
expect_status 401

# The eleventh attempt is refused before its token is looked at, a good one too.
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 429
expect_envelope rate_limit_error
after=$(header retry-after)
[ -n "$after" ] && [ "$after" -gt 890 ] && [ "$after" -le 900 ] || fail "retry-after of a first lockout: $HEADERS"
call "$BASE/v1/models" -H "x-api-key: $TOKEN"
expect_status 429
call "$BASE/auth/refresh" -d '{"refresh_token":"cgr_whatever"}'
expect_status 429
call "$BASE/v1/messages" -H "Expect: 100-continue" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 429
[ "$(wc -l <"$RECORD")" = 0 ] || fail "a locked-out request reached upstream: $(cat "$RECORD")"

# Another IP: its good token works, its bad one is a plain 401.
call --interface 127.0.0.2 "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 200
call --interface 127.0.0.2 "$BASE/v1/messages" -H "x-api-key: $BAD" -d "$MSG"
expect_status 401

# The log: each failure with time, IP, route and reason; the lockout; never the credential.
log=$(cat "$SERVER_LOG")
failures=$(grep -c '"event":"auth_failure"' "$SERVER_LOG")
[ "$failures" = 11 ] || fail "expected 11 auth_failure lines, got $failures: $log"
line=$(grep '"event":"auth_failure"' "$SERVER_LOG" | head -1)
for field in '"time":"20' '"ip":"127.0.0.1"' '"route":"POST /v1/messages"' '"reason":"bad_signature"'; do
  expect_contains "$line" "$field"
done
expect_contains "$log" '"key_id":"k7x"'
expect_contains "$log" '"ip":"127.0.0.2"'
lock=$(grep '"event":"lockout"' "$SERVER_LOG") || fail "no lockout line: $log"
expect_contains "$lock" '"ip":"127.0.0.1"'
expect_contains "$lock" '"duration":"15m"'
expect_not_contains "$log" "$KEY_SECRET"
expect_not_contains "$log" "$flip${sig:1}"
expect_not_contains "$log" "${TOKEN%%.*}."

# /metrics: failures by reason, lockouts begun and in force.
[ "$(metric 'claudegate_auth_failures_total\{reason="bad_signature"\}')" = 10 ] \
  || fail "bad_signature failures: $(curl -s "$BASE/metrics")"
[ "$(metric claudegate_lockouts_total)" = 1 ] || fail "lockouts_total: $(curl -s "$BASE/metrics")"
[ "$(metric claudegate_lockouts_active)" = 1 ] || fail "lockouts_active: $(curl -s "$BASE/metrics")"
stop_server

# A short configured lockout expires; the next one is the repeat duration.
# Refresh failures count too.
cat >"$SCRATCH/claudegate.toml" <<'TOML'
[serve.lockout]
failures_per_minute = 3
first = "2s"
repeat = "1h"
TOML
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
start_server --upstream "$UPSTREAM_URL"
# The three failures: refresh-token reuse, the family it revoked, an unknown token.
PAIR=$("$CG" issue --sub hank --plan free --refresh --json)
RT0=$(json_get "$PAIR" 'd["refresh_token"]')
refresh() { call "$BASE/auth/refresh" -H "content-type: application/json" -d "{\"refresh_token\":\"$1\"}"; }
refresh "$RT0"
expect_status 200
RT1=$(json_get "$BODY" 'd["refresh_token"]')
refresh "$RT0"
expect_status 401
refresh "$RT1"
expect_status 401
body=${RT0#cgr_}
[ "${body:0:1}" = A ] && first=B || first=A
refresh "cgr_$first${body:1}"
expect_status 401
for reason in refresh_reuse revoked; do
  wait_log "\"reason\":\"$reason\",\"route\":\"POST /auth/refresh\""
done
[ "$(grep -c '"event":"auth_failure".*"route":"POST /auth/refresh"' "$SERVER_LOG")" = 3 ] \
  || fail "three refresh failures logged: $(cat "$SERVER_LOG")"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 429
after=$(header retry-after)
[ -n "$after" ] && [ "$after" -le 2 ] || fail "retry-after of a 2s lockout: $HEADERS"
for ((i = 0; i < 50; i++)); do
  call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
  [ "$STATUS" = 429 ] || break
  sleep 0.1
done
expect_status 200
for i in 1 2 3; do
  call "$BASE/v1/messages" -H "x-api-key: $BAD" -d "$MSG"
  expect_status 401
done
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 429
after=$(header retry-after)
[ "$after" -gt 3590 ] || fail "retry-after of a repeat lockout: $HEADERS"
expect_contains "$(grep '"event":"lockout"' "$SERVER_LOG" | tail -1)" '"repeat":true'
[ "$(metric claudegate_lockouts_total)" = 2 ] || fail "lockouts_total: $(curl -s "$BASE/metrics")"
expect_not_contains "$(cat "$SERVER_LOG")" "${RT0#cgr_}"

# POST /oauth/token: wrong client secrets for a real key count (its id is
# logged, never a secret); the locked IP is refused there, another IP is not.
MINTED=$("$CG" issue --api-key --sub svc --plan free --json)
KEY=$(json_get "$MINTED" 'd["api_key"]')
ID=$(json_get "$MINTED" 'd["id"]')
WRONG="cgk_${ID}_$(printf 'A%.0s' $(seq 43))"
token_from() {
  call --interface "$1" "$BASE/oauth/token" -H 'content-type: application/x-www-form-urlencoded' \
    --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$ID" \
    --data-urlencode "client_secret=$2"
}
for i in 1 2 3; do
  token_from 127.0.0.3 "$WRONG"
  expect_status 401
done
token_from 127.0.0.3 "$KEY"
expect_status 429
expect_envelope rate_limit_error
token_from 127.0.0.4 "$KEY"
expect_status 200
log=$(cat "$SERVER_LOG")
expect_contains "$log" '"ip":"127.0.0.3","key_id":"'"$ID"'","level":"warning","reason":"invalid_client","route":"POST /oauth/token"'
expect_not_contains "$log" "${KEY#cgk_"$ID"_}"
expect_not_contains "$log" "${WRONG#cgk_"$ID"_}"
pass
