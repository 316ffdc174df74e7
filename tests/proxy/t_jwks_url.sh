#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# serve-local --jwks URL --jwks-iss ISS: tokens of an external IdP (PyJWT,
# keys fetched from a fake IdP on loopback) are accepted besides local ones,
# with the IdP's issuer only and the --jwks-plan only (their claims may
# narrow it, never widen it); their subjects, jtis and revocations are
# namespaced "ISS|sub" apart from local ones; a new kid is not refetched
# within 30 s (the refetch after 30 s: unit.test_gateway); bad setups
# refuse to start.
source "$(dirname "$0")/proxy_common.sh"
"$PY" -c 'import jwt, cryptography' 2>/dev/null || { echo "SKIPPED: python3-jwt missing"; exit 77; }
IDP_PY=$PROXY_DIR/../cli/fake_idp.py
IDP=$SCRATCH/idp
mkdir -p "$IDP"
for name in idp-key-1 idp-key-2; do "$PY" "$IDP_PY" keypair "$IDP" "$name"; done
"$PY" "$IDP_PY" jwks "$IDP" idp-key-1
"$PY" "$IDP_PY" serve "$IDP" &
PIDS+=($!)
disown $!
wait_file "$IDP/port"
URL="http://127.0.0.1:$(cat "$IDP/port")/jwks.json"
ISS=https://idp.example/
fetches() { if [ -f "$IDP/requests" ]; then wc -l <"$IDP/requests" | tr -d ' '; else echo 0; fi; }
idp_token() { "$PY" "$IDP_PY" sign "$IDP" "$1" "$2" claude-proxy "$3" ${4:+"$4"}; }

"$CG" keygen >/dev/null
LOCAL=$("$CG" issue --sub local-user --plan free)
IDP_FREE=$(idp_token idp-key-1 "$ISS" dave)
IDP_PRO=$(idp_token idp-key-1 "$ISS" erin '{"plan":"pro"}')
IDP_ADMIN=$(idp_token idp-key-1 "$ISS" mallory '{"plan":"admin","daily_token_limit":900000000}')
IDP_NARROW=$(idp_token idp-key-1 "$ISS" gina '{"daily_token_limit":1000}')
LOCAL_DAVE=$("$CG" issue --sub dave --plan free)
WRONG_ISS=$(idp_token idp-key-1 https://evil.example/ mallory)

# Bad setups refuse to start: usage errors, or failure when the IdP cannot be reached.
expect_exit 2 "$CG" serve-local --mock-upstream --listen 127.0.0.1:0 --jwks "$URL"
expect_contains "$ERR" "--jwks-iss"
printf '[serve]\njwks = "%s"\n' "$URL" >"$SCRATCH/idp.toml" # the config key alone needs the issuer too
CLAUDEGATE_CONFIG=$SCRATCH/idp.toml expect_exit 2 "$CG" serve-local --mock-upstream --listen 127.0.0.1:0
expect_contains "$ERR" "--jwks $URL needs --jwks-iss"
expect_exit 2 "$CG" serve-local --mock-upstream --listen 127.0.0.1:0 --jwks http://idp.example/jwks.json --jwks-iss "$ISS"
expect_contains "$ERR" "use https://"
expect_exit 2 "$CG" serve-local --mock-upstream --listen 127.0.0.1:0 --jwks "$URL" --jwks-iss "$ISS" --jwks-plan gold
expect_contains "$ERR" "--jwks-plan"
expect_exit 1 "$CG" serve-local --mock-upstream --listen 127.0.0.1:0 --jwks "${URL%/jwks.json}/missing" --jwks-iss "$ISS"
expect_contains "$ERR" "HTTP 404"
[ "$(fetches)" = 0 ] || fail "the bad setups fetched the JWKS $(fetches) times"

start_server --mock-upstream --jwks "$URL" --jwks-iss "$ISS"
expect_contains "$(cat "$SERVER_LOG")" "also accepting tokens of issuer $ISS"
[ "$(fetches)" = 1 ] || fail "the JWKS was not fetched once at start: $(fetches)"

# An IdP token without a plan claim gets the default plan (free: 50000 tokens/day).
call "$BASE/v1/messages" -H "Authorization: Bearer $IDP_FREE" -d "$MSG"
expect_status 200
[ "$(header x-claudegate-quota-limit)" = 50000 ] || fail "quota limit: $HEADERS"
# A plan claim from the IdP never widens what --jwks-plan grants: pro and
# admin claims get free, opus stays refused, a larger daily limit is ignored.
call "$BASE/v1/messages" -H "x-api-key: $IDP_PRO" -d "$MSG"
expect_status 200
[ "$(header x-claudegate-quota-limit)" = 50000 ] || fail "the IdP's plan claim widened the quota: $HEADERS"
call "$BASE/v1/messages" -H "x-api-key: $IDP_ADMIN" \
  -d '{"model":"claude-opus-4-1","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}'
expect_status 403
expect_envelope permission_error
expect_contains "$BODY" "plan free"
call "$BASE/v1/messages" -H "x-api-key: $IDP_ADMIN" -d "$MSG"
expect_status 200
[ "$(header x-claudegate-quota-limit)" = 50000 ] || fail "the IdP's daily_token_limit widened the quota: $HEADERS"
# ... but may narrow it.
call "$BASE/v1/messages" -H "x-api-key: $IDP_NARROW" -d "$MSG"
expect_status 200
[ "$(header x-claudegate-quota-limit)" = 1000 ] || fail "a lower daily_token_limit claim was ignored: $HEADERS"
# The IdP's keys with another issuer: 401.
call "$BASE/v1/messages" -H "x-api-key: $WRONG_ISS" -d "$MSG"
expect_status 401
expect_envelope authentication_error
expect_contains "$BODY" "evil.example"
# Local tokens still work, and are metered under their own subject; the
# IdP's dave is metered as ISS|dave, apart from the local dave.
call "$BASE/v1/messages" -H "x-api-key: $LOCAL" -d "$MSG"
expect_status 200
[ "$(ledger "select count(*) from usage_ledger where subject='${ISS}|dave' and status=200")" = 1 ] \
  || fail "the IdP subject was not metered under its namespace: $(ledger 'select subject from usage_ledger')"
[ "$(ledger "select count(*) from usage_ledger where subject='dave'")" = 0 ] \
  || fail "the IdP's dave was metered as the local dave"
[ "$(fetches)" = 1 ] || fail "known kids caused fetches: $(fetches)"

# Revoking the local dave leaves the IdP's dave alone, and the other way round.
"$CG" revoke --sub dave --reason "local dave left" >/dev/null
call "$BASE/v1/messages" -H "x-api-key: $IDP_FREE" -d "$MSG"
expect_status 200
call "$BASE/v1/messages" -H "x-api-key: $LOCAL_DAVE" -d "$MSG"
expect_status 401
"$CG" revoke --sub "${ISS}|dave" --reason "left the company" >/dev/null
call "$BASE/v1/messages" -H "x-api-key: $IDP_FREE" -d "$MSG"
expect_status 401
expect_contains "$BODY" revoked

# POST /auth/revoke of an IdP token deny-lists its jti: it stops working.
IDP_SELF=$(idp_token idp-key-1 "$ISS" hana '{"jti":"idp-jti-1"}')
call "$BASE/v1/messages" -H "x-api-key: $IDP_SELF" -d "$MSG"
expect_status 200
call "$BASE/auth/revoke" -H 'content-type: application/json' -d "{\"token\":\"$IDP_SELF\"}"
expect_status 200
call "$BASE/v1/messages" -H "x-api-key: $IDP_SELF" -d "$MSG"
expect_status 401
expect_contains "$BODY" "${ISS}|idp-jti-1"
# One without a jti cannot be revoked alone: a 400 that says what to do.
call "$BASE/auth/revoke" -H 'content-type: application/json' -d "{\"token\":\"$IDP_NARROW\"}"
expect_status 400
expect_contains "$BODY" "revoke --sub"

# The IdP rotates to key 2. Within 30 s of the start-up fetch its kid is
# unknown and not refetched. (The refetch once 30 s have passed, and key 1
# gone with it, is checked by unit.test_jwks_remote and unit.test_gateway on a
# FixedClock.)
"$PY" "$IDP_PY" jwks "$IDP" idp-key-2
ROTATED=$(idp_token idp-key-2 "$ISS" frank)
call "$BASE/v1/messages" -H "x-api-key: $ROTATED" -d "$MSG"
expect_status 401
expect_contains "$BODY" "unknown kid"
[ "$(fetches)" = 1 ] || fail "an unknown kid within 30 s was refetched: $(fetches)"
stop_server
pass
