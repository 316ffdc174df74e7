#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# POST /auth/refresh after `revoke --sub`: 401 authentication_error naming
# the revoked subject, no new access token; the family's last access token
# is refused too, and another subject's family still rotates.
# store-backends: sqlite postgresql
source "$(dirname "$0")/proxy_common.sh"

"$CG" keygen >/dev/null
RT=$(json_get "$("$CG" issue --sub carol --plan pro --refresh --json)" 'd["refresh_token"]')
OTHER=$(json_get "$("$CG" issue --sub dave --plan pro --refresh --json)" 'd["refresh_token"]')
start_server --mock-upstream

# Before: the gateway rotates carol's family.
call "$BASE/auth/refresh" -H "content-type: application/json" -d "{\"refresh_token\":\"$RT\"}"
expect_status 200
RT=$(json_get "$BODY" 'd["refresh_token"]')
AT=$(json_get "$BODY" 'd["access_token"]')

expect_exit 0 "$CG" revoke --sub carol --reason offboarded
expect_contains "$OUT" "1 refresh family stopped"

# After: the live refresh token no longer mints anything.
call "$BASE/auth/refresh" -H "content-type: application/json" -d "{\"refresh_token\":\"$RT\"}"
expect_status 401
expect_envelope authentication_error
expect_contains "$BODY" "subject carol was revoked"
expect_not_contains "$BODY" access_token
# The revocation came from another process: on SQLite the next request sees
# it; a PostgreSQL store promises every replica within 1 s (NOTIFY, epoch poll).
tries=1
[ "$STORE_BACKEND" = sqlite ] || tries=15
for ((i = 0; i < tries; i++)); do
  call "$BASE/v1/messages" -H "Authorization: Bearer $AT" -d "$MSG"
  [ "$STATUS" = 401 ] && break
  sleep 0.1
done
expect_status 401

# Another subject is not affected.
call "$BASE/auth/refresh" -H "content-type: application/json" -d "{\"refresh_token\":\"$OTHER\"}"
expect_status 200
pass
