#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A service authenticating with OAuth 2.0 client credentials: an API key
# minted for it, traded at POST /oauth/token for short-lived access tokens
# that a shell client caches and renews before they expire; then the same
# with the TypeScript SDK's token provider (skipped without Node.js 20 + npm).
source "$(dirname "$0")/../lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

step "an API key for the service (shown once; the store keeps only its hash)"
"$CG" keygen
minted=$("$CG" issue --api-key --sub reporting-svc --plan pro --name reporting --json)
CLIENT_ID=$(json_get "$minted" 'd["id"]')
CLIENT_SECRET=$(json_get "$minted" 'd["api_key"]')
echo "client_id: $CLIENT_ID"
start_gateway

step "a token cache in a few lines of shell: renew when less than 60 s are left"
CACHE=$CLAUDEGATE_HOME/token.json
FETCHES=0
# Sets ACCESS_TOKEN: the cached one, or a new one when less than 60 s are left.
fresh_token() {
  local now expires
  now=$(date +%s)
  expires=$( [ -s "$CACHE" ] && json_get "$(cat "$CACHE")" 'd["expires_at"]' || echo 0)
  if [ $((expires - now)) -lt 60 ]; then
    http "$GATEWAY/oauth/token" -u "$CLIENT_ID:$CLIENT_SECRET" \
      -d grant_type=client_credentials -d scope=claude:messages
    expect_status 200
    json_get "$BODY" "json.dumps({'token': d['access_token'], 'expires_at': $now + d['expires_in']})" >"$CACHE"
    FETCHES=$((FETCHES + 1))
    echo "fetched a new access token (expires_in $(json_get "$BODY" 'd["expires_in"]')s)"
  fi
  ACCESS_TOKEN=$(json_get "$(cat "$CACHE")" 'd["token"]')
}
for call in 1 2; do
  fresh_token
  http "$GATEWAY/v1/messages" -H "authorization: Bearer $ACCESS_TOKEN" -d "$(message_body)"
  expect_status 200
  echo "call $call: HTTP $STATUS, $(json_get "$BODY" 'd["usage"]["output_tokens"]') output tokens"
done
[ "$FETCHES" = 1 ] || fail "expected one token fetch for two calls, got $FETCHES"

step "near expiry the cache renews (we move the cached expiry 30 s ahead of now)"
json_get "$(cat "$CACHE")" "json.dumps({'token': d['token'], 'expires_at': $(date +%s) + 30})" >"$CACHE.new"
mv "$CACHE.new" "$CACHE"
fresh_token
http "$GATEWAY/v1/messages" -H "authorization: Bearer $ACCESS_TOKEN" -d "$(message_body)"
expect_status 200
[ "$FETCHES" = 2 ] || fail "expected the cache to renew the token, fetches: $FETCHES"

step "a wrong secret is an RFC 6749 invalid_client"
http "$GATEWAY/oauth/token" -u "$CLIENT_ID:cgk_${CLIENT_ID}_wrong" -d grant_type=client_credentials
expect_status 401
echo "$(json_get "$BODY" 'd["error"]'): $(json_get "$BODY" 'd["error_description"]')"

step "the TypeScript SDK with a token provider"
if ! command -v node >/dev/null || ! command -v npm >/dev/null ||
  ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "skipped: the SDK part needs Node.js 20 or later with npm"
elif ! (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error); then
  timeout 20 npm ping --loglevel=error >/dev/null 2>&1 || skip "the npm registry is unreachable; cannot install @anthropic-ai/sdk"
  fail "npm install failed although the registry answers (see above)"
else
  (cd "$HERE" && env -u ANTHROPIC_API_KEY -u ANTHROPIC_AUTH_TOKEN -u ANTHROPIC_BASE_URL \
    CLAUDEGATE_URL="$GATEWAY" CLAUDEGATE_CLIENT_ID="$CLIENT_ID" CLAUDEGATE_CLIENT_SECRET="$CLIENT_SECRET" \
    node token-provider.mjs)
fi

step "every call was metered under the key's subject"
stop_gateway
"$CG" usage-report --sub reporting-svc --by sub
echo
echo "client-credentials example: all checks passed"
