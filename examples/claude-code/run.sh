#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Claude Code through the gateway: a static token in ANTHROPIC_AUTH_TOKEN, and
# an apiKeyHelper that rotates a refresh token kept in a 0600 file. Claude Code
# itself is not needed: its requests are replayed with curl.
source "$(dirname "$0")/../lib.sh"
HELPER=$(cd "$(dirname "$0")" && pwd)/claudegate-key-helper.sh

# Claude Code asks for an opus model unless told otherwise, and plan pro allows
# haiku and sonnet only: set ANTHROPIC_MODEL (in settings.json's "env") to one.
CLAUDE_CODE_DEFAULT_MODEL=claude-opus-4-5
export ANTHROPIC_MODEL=claude-sonnet-4-5

# Replay a request as Claude Code sends it: /v1/messages?beta=true, streaming,
# the model from ANTHROPIC_MODEL (else its opus default), max_tokens 32000,
# an anthropic-beta header, authenticated by the extra curl args "$@".
claude_code_request() {
  http "$ANTHROPIC_BASE_URL/v1/messages?beta=true" "$@" \
    -H "anthropic-version: 2023-06-01" -H "anthropic-beta: claude-code-20250219" \
    -H "content-type: application/json" \
    -d '{"model":"'"${ANTHROPIC_MODEL:-$CLAUDE_CODE_DEFAULT_MODEL}"'","max_tokens":32000,"stream":true,"messages":[{"role":"user","content":"Explain this repo"}]}'
}

# Run the helper with extra environment "$@"; its exit status in $status, its
# stdout and stderr in $CLAUDEGATE_HOME/helper.out and helper.err.
run_helper() {
  status=0
  env "$@" "$HELPER" >"$CLAUDEGATE_HOME/helper.out" 2>"$CLAUDEGATE_HOME/helper.err" || status=$?
}

# Require the last helper run to have failed, printed no token, and said $1 on stderr.
expect_helper_failure() {
  [ "$status" -ne 0 ] || fail "the helper succeeded"
  [ ! -s "$CLAUDEGATE_HOME/helper.out" ] || fail "the helper printed a token after failing"
  expect_contains "$(cat "$CLAUDEGATE_HOME/helper.err")" "$1" "the helper's reason"
  echo "the helper fails (exit $status): $(tail -1 "$CLAUDEGATE_HOME/helper.err")"
}

# Require token $1 to verify for subject alice.
expect_valid() {
  expect_exit 0 "$CG" verify "$1"
  [ "$(json_get "$OUT" 'd["sub"]')" = alice ] || fail "token is not alice's: $OUT"
}

step "the gateway"
"$CG" keygen
start_gateway

step "option 1: a static token — ANTHROPIC_BASE_URL + ANTHROPIC_AUTH_TOKEN"
export ANTHROPIC_BASE_URL=$GATEWAY
ANTHROPIC_AUTH_TOKEN=$("$CG" issue --sub alice --plan pro --ttl 8h)
export ANTHROPIC_AUTH_TOKEN
echo "ANTHROPIC_BASE_URL=$ANTHROPIC_BASE_URL ANTHROPIC_AUTH_TOKEN=${ANTHROPIC_AUTH_TOKEN:0:24}…"
http -I "$ANTHROPIC_BASE_URL/api/hello"
echo "HEAD /api/hello (Claude Code's connectivity check): HTTP $STATUS"
expect_status 200
# ANTHROPIC_AUTH_TOKEN is sent as Authorization: Bearer.
claude_code_request -H "Authorization: Bearer $ANTHROPIC_AUTH_TOKEN"
echo "POST /v1/messages?beta=true (streaming): HTTP $STATUS"
expect_status 200
expect_contains "$BODY" "event: message_stop" "streamed reply"
# Without ANTHROPIC_MODEL, Claude Code's default opus model is not in plan pro.
ANTHROPIC_MODEL='' claude_code_request -H "Authorization: Bearer $ANTHROPIC_AUTH_TOKEN"
echo "the same without ANTHROPIC_MODEL ($CLAUDE_CODE_DEFAULT_MODEL): HTTP $STATUS"
expect_status 403

step "option 2: apiKeyHelper — a refresh token in a 0600 file, rotated on every call"
export CLAUDEGATE_REFRESH_FILE=$CLAUDEGATE_HOME/claude/refresh-token
mkdir -m 700 "$(dirname "$CLAUDEGATE_REFRESH_FILE")"
(
  umask 077
  json_get "$("$CG" issue --sub alice --plan pro --refresh --json)" 'd["refresh_token"]' >"$CLAUDEGATE_REFRESH_FILE"
)
RT0=$(cat "$CLAUDEGATE_REFRESH_FILE")
echo "stored refresh token ${RT0:0:10}… in $CLAUDEGATE_REFRESH_FILE (mode $(stat -c %a "$CLAUDEGATE_REFRESH_FILE"))"

step "Claude Code runs the helper: a fresh access token, the refresh token rotated"
AT1=$("$HELPER")
RT1=$(cat "$CLAUDEGATE_REFRESH_FILE")
expect_valid "$AT1"
[ "$RT1" != "$RT0" ] || fail "the helper did not rotate the refresh token"
echo "1st run: access token ${AT1:0:24}… verifies; refresh token now ${RT1:0:10}…"
AT2=$("$HELPER")
RT2=$(cat "$CLAUDEGATE_REFRESH_FILE")
expect_valid "$AT2"
[ "$AT2" != "$AT1" ] || fail "the helper printed the same access token twice"
[ "$RT2" != "$RT1" ] || fail "the second run did not rotate the refresh token"
echo "2nd run: access token ${AT2:0:24}… verifies; refresh token now ${RT2:0:10}…"
[ "$(stat -c %a "$CLAUDEGATE_REFRESH_FILE")" = 600 ] || fail "the refresh token file lost mode 0600"

step "Claude Code sends the helper's token as x-api-key and as Authorization: Bearer"
claude_code_request -H "x-api-key: $AT2" -H "Authorization: Bearer $AT2"
echo "HTTP $STATUS"
expect_status 200

step "the same helper on a machine without the store: CLAUDEGATE_REFRESH_URL=<gateway>/auth/refresh"
AT3=$(CLAUDEGATE_REFRESH_URL=$GATEWAY/auth/refresh "$HELPER")
RT3=$(cat "$CLAUDEGATE_REFRESH_FILE")
expect_valid "$AT3"
[ "$RT3" != "$RT2" ] || fail "/auth/refresh did not rotate the refresh token"
echo "via the gateway: access token ${AT3:0:24}… verifies; refresh token now ${RT3:0:10}…"

step "a spent refresh token is single use: presenting it again is reuse (exit 6)"
expect_exit 6 "$CG" issue --refresh-token - <<<"$RT0"
echo "$ERR"
# Reuse revokes the whole family, so a thief and the owner both lose it: exit 5 now.
expect_exit 5 "$CG" issue --refresh-token - <<<"$RT3"
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $AT3" -d "$(message_body)"
expect_status 401
echo "the family's access token at the gateway: HTTP $STATUS"
# The helper says why on stderr (Claude Code shows it), locally and through the gateway.
run_helper
expect_helper_failure "is revoked"
run_helper CLAUDEGATE_REFRESH_URL="$GATEWAY/auth/refresh"
expect_helper_failure "is revoked"
[ "$(cat "$CLAUDEGATE_REFRESH_FILE")" = "$RT3" ] || fail "a failed rotation changed the stored refresh token"

step "offboarding: revoke --sub stops the helper too"
(
  umask 077
  json_get "$("$CG" issue --sub bob --plan pro --refresh --json)" 'd["refresh_token"]' >"$CLAUDEGATE_REFRESH_FILE"
)
run_helper
[ "$status" -eq 0 ] || fail "the helper failed for bob: $(cat "$CLAUDEGATE_HOME/helper.err")"
echo "bob's helper run: a token"
expect_exit 0 "$CG" revoke --sub bob --reason "left the team"
echo "$OUT"
expect_contains "$OUT" "1 refresh family stopped"
run_helper
expect_helper_failure "subject bob was revoked"

step "the helper refuses a refresh token file others can read"
chmod 644 "$CLAUDEGATE_REFRESH_FILE"
status=0
"$HELPER" >/dev/null 2>"$CLAUDEGATE_HOME/helper.err" || status=$?
[ "$status" -ne 0 ] || fail "the helper used a world-readable refresh token"
expect_contains "$(cat "$CLAUDEGATE_HOME/helper.err")" "chmod 600" "helper message"
cat "$CLAUDEGATE_HOME/helper.err"

echo
echo "claude-code example: all checks passed"
