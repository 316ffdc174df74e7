#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Key rotation needs no restart; /.well-known/jwks.json publishes the keys;
# /auth/refresh rotates a refresh token (reuse revokes the family);
# /auth/revoke (RFC 7009) kills the caller's own token on the next request.
# store-backends: sqlite postgresql
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
OLD=$("$CG" issue --sub gina --plan pro)
start_server --mock-upstream

# Rotate while serving: tokens of the new key work, the old key still verifies.
"$CG" keygen --rotate >/dev/null
NEW=$("$CG" issue --sub gina --plan pro)
sleep 1
call "$BASE/v1/messages" -H "x-api-key: $NEW" -d "$MSG"
expect_status 200
call "$BASE/v1/messages" -H "x-api-key: $OLD" -d "$MSG"
expect_status 200
call "$BASE/.well-known/jwks.json"
expect_status 200
[ "$(json_get "$BODY" 'len(d["keys"])')" = 2 ] || fail "jwks: $BODY"
expect_not_contains "$BODY" '"d"'

# Refresh: a new pair, same JSON members as issue --json.
PAIR=$("$CG" issue --sub hank --plan free --refresh --json)
RT0=$(json_get "$PAIR" 'd["refresh_token"]')
call "$BASE/auth/refresh" -H "content-type: application/json" -d "{\"refresh_token\":\"$RT0\"}"
expect_status 200
[ "$(json_get "$BODY" 'sorted(d.keys())')" = "['access_token', 'expires_in', 'family_id', 'jti', 'kid', 'refresh_expires_in', 'refresh_token', 'token_type']" ] \
  || fail "refresh JSON: $BODY"
AT1=$(json_get "$BODY" 'd["access_token"]')
call "$BASE/v1/messages" -H "Authorization: Bearer $AT1" -d "$MSG"
expect_status 200
# Reuse of the spent refresh token: 401, and the whole family is revoked.
call "$BASE/auth/refresh" -d "{\"refresh_token\":\"$RT0\"}"
expect_status 401
expect_envelope authentication_error
call "$BASE/v1/messages" -H "Authorization: Bearer $AT1" -d "$MSG"
expect_status 401
call "$BASE/auth/refresh" -d '{}'
expect_status 400

# RFC 7009 revoke of one's own access token (form-encoded): 200, then 401.
call "$BASE/auth/revoke" --data-urlencode "token=$NEW"
expect_status 200
call "$BASE/v1/messages" -H "x-api-key: $NEW" -d "$MSG"
expect_status 401
expect_contains "$BODY" revoked
# An unknown token is not an error (RFC 7009 §2.2).
call "$BASE/auth/revoke" --data-urlencode "token=garbage"
expect_status 200
pass
