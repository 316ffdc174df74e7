#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# POST /oauth/token, the client credentials grant (RFC 6749 §4.4): an API
# key's id and secret (HTTP Basic or form fields) buy an access token of the
# key's grant, its scope narrowed on request; every §5.2 error; and the
# token works on the Messages route under the key's subject.
# store-backends: sqlite postgresql
source "$(dirname "$0")/proxy_common.sh"

cat >"$SCRATCH/claudegate.toml" <<'TOML'
[plans.svc]
models = ["claude-haiku-*"]
TOML
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
MINTED=$("$CG" issue --api-key --sub billing-svc --plan svc --scope "claude:messages claude:models" --json)
KEY=$(json_get "$MINTED" 'd["api_key"]')
ID=$(json_get "$MINTED" 'd["id"]')
start_server --mock-upstream
TOKEN_URL="$BASE/oauth/token"
FORM=(-H 'content-type: application/x-www-form-urlencoded')

# Form credentials, the whole grant.
call "$TOKEN_URL" "${FORM[@]}" --data-urlencode grant_type=client_credentials \
  --data-urlencode "client_id=$ID" --data-urlencode "client_secret=$KEY"
expect_status 200
[ "$(json_get "$BODY" 'd["token_type"]')" = Bearer ] || fail "token_type: $BODY"
[ "$(json_get "$BODY" 'd["scope"]')" = "claude:messages claude:models" ] || fail "scope: $BODY"
EXPIRES=$(json_get "$BODY" 'd["expires_in"]')
[ "$EXPIRES" -gt 0 ] && [ "$EXPIRES" -le 900 ] || fail "expires_in: $BODY"
[ "$(header cache-control)" = no-store ] || fail "Cache-Control: $HEADERS"
ACCESS=$(json_get "$BODY" 'd["access_token"]')
CLAIMS=$("$CG" verify --json "$ACCESS") || fail "the minted token does not verify: $CLAIMS"
[ "$(json_get "$CLAIMS" 'd["claims"]["sub"]')" = billing-svc ] || fail "sub: $CLAIMS"
[ "$(json_get "$CLAIMS" 'd["claims"]["client_id"]')" = "$ID" ] || fail "client_id claim: $CLAIMS"
[ "$(json_get "$CLAIMS" 'd["claims"]["plan"]')" = svc ] || fail "plan: $CLAIMS"
call "$BASE/v1/messages" -H "authorization: Bearer $ACCESS" -d "$MSG"
expect_status 200
wait_rows 1 # written behind the reply, a few ms after it
[ "$(ledger "select subject from usage_ledger order by id desc limit 1")" = billing-svc ] || fail "ledger subject"

# HTTP Basic, scope narrowed: the token holds claude:models only.
call "$TOKEN_URL" "${FORM[@]}" -u "$ID:$KEY" -d grant_type=client_credentials -d scope=claude:models
expect_status 200
[ "$(json_get "$BODY" 'd["scope"]')" = claude:models ] || fail "narrowed scope: $BODY"
NARROW=$(json_get "$BODY" 'd["access_token"]')
call "$BASE/v1/messages" -H "authorization: Bearer $NARROW" -d "$MSG"
expect_status 403
call "$BASE/v1/models" -H "authorization: Bearer $NARROW"
expect_status 200

# Each RFC 6749 §5.2 error.
oauth_error() {
  expect_status "$1"
  [ "$(json_get "$BODY" 'd["error"]')" = "$2" ] || fail "expected $2: $BODY"
  expect_contains "$(json_get "$BODY" 'd["error_description"]')" "$3"
}
call "$TOKEN_URL" "${FORM[@]}" -u "$ID:$KEY" -d grant_type=client_credentials -d "scope=claude:messages admin"
oauth_error 400 invalid_scope "admin"
call "$TOKEN_URL" "${FORM[@]}" -u "$ID:$KEY" -d grant_type=password
oauth_error 400 unsupported_grant_type "client_credentials"
call "$TOKEN_URL" "${FORM[@]}" -u "$ID:$KEY" -d scope=claude:models
oauth_error 400 invalid_request "grant_type"
call "$TOKEN_URL" "${FORM[@]}" -u "$ID:$KEY" -d grant_type=client_credentials -d grant_type=client_credentials
oauth_error 400 invalid_request "more than once"
call "$TOKEN_URL" -H 'content-type: application/json' -u "$ID:$KEY" -d '{"grant_type":"client_credentials"}'
oauth_error 400 invalid_request "x-www-form-urlencoded"
WRONG="${KEY%?}x"
[ "$WRONG" != "$KEY" ] || WRONG="${KEY%?}y"
call "$TOKEN_URL" "${FORM[@]}" -u "$ID:$WRONG" -d grant_type=client_credentials
oauth_error 401 invalid_client "client authentication failed"
expect_contains "$(header www-authenticate)" 'Basic realm="claudegate"'
call "$TOKEN_URL" "${FORM[@]}" -u "0000000000000000:$KEY" -d grant_type=client_credentials
oauth_error 401 invalid_client "client_id"
call "$TOKEN_URL" "${FORM[@]}" -d grant_type=client_credentials
oauth_error 401 invalid_client "client_secret"

# A revoked key buys nothing.
"$CG" revoke --api-key "$ID" >/dev/null
call "$TOKEN_URL" "${FORM[@]}" -u "$ID:$KEY" -d grant_type=client_credentials
oauth_error 401 invalid_client "revoked"

# The secret is in no log line.
stop_server
expect_not_contains "$(cat "$SERVER_LOG")" "${KEY#cgk_"$ID"_}"
pass
