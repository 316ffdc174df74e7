#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Zero-downtime signing-key rotation: while serve-local keeps running, rotate
# the key; tokens of the old key and of the new key are both accepted, and the
# JWKS publishes both kids until the old key retires.
source "$(dirname "$0")/../lib.sh"

# The kid in the header of token $1 (`inspect` decodes without verifying).
kid_of() { json_get "$("$CG" inspect "$1" 2>/dev/null)" 'd["header"]["kid"]'; }

# Member $2 of key $1 in `keygen --list --json` ("" when absent).
key_field() {
  python3 -c 'import json,sys
keys = {k["kid"]: k for k in json.load(sys.stdin)["keys"]}
print(keys[sys.argv[1]].get(sys.argv[2], ""))' "$1" "$2" < <("$CG" keygen --list --json)
}

# POST a message with token $1 (label $2); require HTTP 200.
call_with() {
  http "$GATEWAY/v1/messages" -H "Authorization: Bearer $1" -d "$(message_body)"
  echo "$2: HTTP $STATUS"
  expect_status 200
}

# The kids the running gateway publishes, sorted, one line.
gateway_kids() {
  http "$GATEWAY/.well-known/jwks.json"
  expect_status 200
  json_get "$BODY" '" ".join(sorted(k["kid"] for k in d["keys"]))'
}

step "key 1, serve-local running, a client holding token A"
KID1=$("$CG" keygen)
echo "key 1: $KID1"
start_gateway
SERVER=$GATEWAY_PID
TOKEN_A=$("$CG" issue --sub web-app --plan pro)
[ "$(kid_of "$TOKEN_A")" = "$KID1" ] || fail "token A is not signed by key 1"
call_with "$TOKEN_A" "token A (key 1)"

step "keygen --rotate: key 2 becomes the signer, key 1 stays published"
KID2=$("$CG" keygen --rotate)
echo "key 2: $KID2"
[ "$KID2" != "$KID1" ] || fail "the rotation kept the kid"
"$CG" keygen --list
[ "$(key_field "$KID1" state)" = published ] || fail "key 1 is not published after the rotation"
[ "$(key_field "$KID2" state)" = active ] || fail "key 2 is not the active key"

step "new tokens are signed by key 2"
TOKEN_B=$("$CG" issue --sub web-app --plan pro)
[ "$(kid_of "$TOKEN_B")" = "$KID2" ] || fail "token B is not signed by key 2"
echo "token B kid: $KID2"

step "the RUNNING gateway accepts both (it reloads the keyring when keys/index.json changes)"
# serve-local looks at the keyring at most every half second, on the next request.
sleep 1
call_with "$TOKEN_B" "token B (key 2)"
call_with "$TOKEN_A" "token A (key 1)"
kill -0 "$SERVER" 2>/dev/null || fail "serve-local (pid $SERVER) is no longer running"
echo "no restart: the serve-local started at the beginning (pid $SERVER) answered all of them"

step "the JWKS publishes both kids (gateway's /.well-known/jwks.json and claudegate jwks)"
served=$(gateway_kids)
echo "$served"
expected=$(printf '%s\n' "$KID1" "$KID2" | sort | tr '\n' ' ')
[ "$served " = "$expected" ] || fail "gateway JWKS kids '$served', expected '$expected'"
local_kids=$(json_get "$("$CG" jwks)" '" ".join(sorted(k["kid"] for k in d["keys"]))')
[ "$local_kids" = "$served" ] || fail "claudegate jwks '$local_kids' differs from the gateway's '$served'"

step "later: key 1 retires once every token it signed has expired"
retire_at=$(key_field "$KID1" retire_at)
echo "key 1 retires at $retire_at (rotation + max_access_ttl 24h + leeway 60s)"
[ -n "$retire_at" ] || fail "key 1 has no retirement time"
retire_s=$(date -d "$retire_at" +%s)
[ "$retire_s" -ge $(($(date +%s) + 86400)) ] || fail "key 1 would retire before a 24h token it signed expires"
# Until then no token of key 1 can outlive it: A expires long before.
expect_exit 4 "$CG" verify --at "$retire_s" "$TOKEN_A"
echo "token A as of $retire_at: $ERR"

echo
echo "key-rotation example: all checks passed"
