#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The admin side of serve-local is for the roles the access policy names
# (admin by default): GET /admin/usage answers usage-report's JSON with its
# filters as query parameters, POST /admin/revoke takes effect on the next
# request; without the role each route is 403 naming it, without a token
# 401; admin calls count in rpm but are never metered nor forwarded.
# store-backends: sqlite postgresql
source "$(dirname "$0")/proxy_common.sh"

cat >"$SCRATCH/claudegate.toml" <<'TOML'
[plans.ops]
models = ["*"]
rpm = 2
TOML
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
ADMIN=$("$CG" issue --sub root --plan admin --role admin)
OPS=$("$CG" issue --sub operator --plan ops --role admin)
USER=$("$CG" issue --sub alice --plan free --role ops --role billing)
VICTIM_JSON=$("$CG" issue --sub victim --plan free --json)
VICTIM=$(json_get "$VICTIM_JSON" 'd["access_token"]')
VICTIM_JTI=$(json_get "$VICTIM_JSON" 'd["jti"]')
BOB=$("$CG" issue --sub bob --plan free)
start_server --mock-upstream

call "$BASE/v1/messages" -H "x-api-key: $USER" -d "$MSG"
expect_status 200

# Usage: the JSON usage-report prints, over the same ledger.
call "$BASE/admin/usage?by=sub,model" -H "Authorization: Bearer $ADMIN"
expect_status 200
expect_contains "$(header content-type)" application/json
WANT=$("$CG" usage-report --by sub,model --format json)
[ "$BODY" = "$WANT" ] || fail "GET /admin/usage is not usage-report's JSON:
got:  $BODY
want: $WANT"
[ "$(json_get "$BODY" 'len(d["rows"])')" = 1 ] || fail "one row (alice), admin calls not metered: $BODY"
[ "$(json_get "$BODY" 'd["rows"][0]["sub"]')" = alice ] || fail "row of alice: $BODY"
[ "$(json_get "$BODY" 'd["rows"][0]["requests"]')" = 1 ] || fail "alice made one request: $BODY"
call "$BASE/admin/usage?sub=nobody&since=2020-01-01" -H "Authorization: Bearer $ADMIN"
expect_status 200
[ "$BODY" = "$("$CG" usage-report --sub nobody --since 2020-01-01 --format json)" ] || fail "filters: $BODY"
[ "$(ledger 'SELECT count(*) FROM usage_ledger')" = 1 ] || fail "admin calls were metered: $(ledger 'SELECT * FROM usage_ledger')"

# Bad parameters are a 400 naming them.
for query in "since=yesterday:since" "by=colour:by" "bogus=1:bogus" "since=2026-01-02&until=2026-01-01:until" \
  "sub=a&sub=b:sub"; do
  call "$BASE/admin/usage?${query%:*}" -H "Authorization: Bearer $ADMIN"
  expect_status 400
  expect_envelope invalid_request_error
  expect_contains "$(json_get "$BODY" 'd["error"]["message"]')" "${query##*:}"
done

# Without the role: 403 naming admin; without a token: 401.
for route in "GET /admin/usage" "POST /admin/revoke" "GET /admin/keys"; do
  call -X "${route% *}" "$BASE${route#* }" -H "x-api-key: $USER" -d '{"sub":"alice"}'
  expect_status 403
  expect_envelope permission_error
  expect_contains "$BODY" "needs the role admin"
  expect_contains "$BODY" "ops, billing"
  call -X "${route% *}" "$BASE${route#* }" -d '{"sub":"alice"}'
  expect_status 401
  expect_envelope authentication_error
done

# Revoke by jti and by subject: refused on the very next request.
call "$BASE/v1/messages" -H "x-api-key: $VICTIM" -d "$MSG"
expect_status 200
call "$BASE/admin/revoke" -H "x-api-key: $ADMIN" -d "{\"jti\":\"$VICTIM_JTI\",\"reason\":\"leaked\"}"
expect_status 200
[ "$(json_get "$BODY" 'd["revoked"]["kind"]')" = jti ] || fail "revoked kind: $BODY"
[ "$(json_get "$BODY" 'd["revoked"]["key"]')" = "$VICTIM_JTI" ] || fail "revoked key: $BODY"
call "$BASE/v1/messages" -H "x-api-key: $VICTIM" -d "$MSG"
expect_status 401
expect_contains "$BODY" revoked
expect_contains "$("$CG" revoke --list)" leaked
call "$BASE/v1/messages" -H "x-api-key: $BOB" -d "$MSG"
expect_status 200
call "$BASE/admin/revoke" -H "x-api-key: $ADMIN" -d '{"sub":"bob"}'
expect_status 200
[ "$(json_get "$BODY" 'd["revoked"]["kind"]')" = subject ] || fail "revoked kind: $BODY"
call "$BASE/v1/messages" -H "x-api-key: $BOB" -d "$MSG"
expect_status 401
[ "$(ledger "SELECT count(*) FROM audit_events WHERE kind = 'revoke' AND detail LIKE '%\"by\":\"root\"%'")" = 2 ] \
  || fail "revocations not audited with who asked: $(ledger 'SELECT * FROM audit_events')"
for body in '{}' '{"jti":"a","sub":"b"}' '{"jti":""}' '{"colour":"red"}' 'not json'; do
  call "$BASE/admin/revoke" -H "x-api-key: $ADMIN" -d "$body"
  expect_status 400
  expect_envelope invalid_request_error
done

# API keys: an admin key reaches the admin side as an admin token does;
# keys are listed without their secret; one revoked by id is refused next.
ROBOT_JSON=$("$CG" issue --api-key --sub robot --plan admin --role admin --name ops-robot --json)
ROBOT=$(json_get "$ROBOT_JSON" 'd["api_key"]')
SVC_JSON=$("$CG" issue --api-key --sub billing-svc --plan free --name billing --json)
SVC=$(json_get "$SVC_JSON" 'd["api_key"]')
SVC_ID=$(json_get "$SVC_JSON" 'd["id"]')
call "$BASE/admin/keys" -H "x-api-key: $ROBOT"
expect_status 200
expect_not_contains "$BODY" "${ROBOT#cgk_*_}"
expect_not_contains "$BODY" "${SVC#cgk_*_}"
[ "$(json_get "$BODY" 'sorted((k["name"], k["sub"], k["state"]) for k in d["api_keys"])')" \
  = "[('billing', 'billing-svc', 'active'), ('ops-robot', 'robot', 'active')]" ] || fail "GET /admin/keys: $BODY"
call "$BASE/admin/keys" -H "x-api-key: $SVC"
expect_status 403
expect_contains "$BODY" "needs the role admin"
call "$BASE/v1/messages" -H "x-api-key: $SVC" -d "$MSG"
expect_status 200
call "$BASE/admin/revoke" -H "Authorization: Bearer $ROBOT" -d "{\"api_key\":\"$SVC_ID\",\"reason\":\"rotated out\"}"
expect_status 200
[ "$(json_get "$BODY" 'd["revoked"]["kind"]')" = api_key ] || fail "revoked kind: $BODY"
call "$BASE/v1/messages" -H "x-api-key: $SVC" -d "$MSG"
expect_status 401
call "$BASE/admin/keys" -H "x-api-key: $ADMIN"
[ "$(json_get "$BODY" '[k["state"] for k in d["api_keys"] if k["id"] == "'"$SVC_ID"'"]')" = "['revoked']" ] \
  || fail "key not revoked: $BODY"
call "$BASE/admin/revoke" -H "x-api-key: $ADMIN" -d '{"api_key":"ffffffffffffffff"}'
expect_status 404
expect_envelope not_found_error

# Admin calls count in rpm (plan ops: 2 a minute).
call "$BASE/admin/usage" -H "x-api-key: $OPS"
expect_status 200
call "$BASE/admin/revoke" -H "x-api-key: $OPS" -d '{"sub":"nobody"}'
expect_status 200
call "$BASE/admin/usage" -H "x-api-key: $OPS"
expect_status 429
expect_envelope rate_limit_error

# /metrics: open on loopback; with --allow-remote (still bound to
# 127.0.0.1 here: the flag changes the policy) it needs the role.
call "$BASE/metrics"
expect_status 200
stop_server
start_server --mock-upstream --allow-remote
call "$BASE/metrics"
expect_status 401
expect_envelope authentication_error
call "$BASE/metrics" -H "x-api-key: $USER"
expect_status 403
expect_envelope permission_error
expect_contains "$BODY" "/metrics needs the role admin"
call "$BASE/metrics" -H "x-api-key: $ADMIN"
expect_status 200
expect_contains "$BODY" claudegate_requests_total
stop_server

# The [access] table: billing may read usage, and only that.
cat >>"$CLAUDEGATE_CONFIG" <<'TOML'
[access]
"/admin/usage" = ["admin", "billing"]
TOML
start_server --mock-upstream
call "$BASE/admin/usage?by=sub" -H "x-api-key: $USER"
expect_status 200
[ "$(json_get "$BODY" 'd["rows"][0]["sub"]')" = alice ] || fail "billing's usage report: $BODY"
call "$BASE/admin/keys" -H "x-api-key: $USER"
expect_status 403
expect_contains "$BODY" "needs the role admin"
stop_server
printf '[plans.ops]\nmodels = ["*"]\n[access]\n"/admin/usgae" = ["billing"]\n' >"$CLAUDEGATE_CONFIG"
expect_exit 2 "$CG" serve-local --mock-upstream --listen 127.0.0.1:0
expect_contains "$ERR" 'did you mean "/admin/usage"?'
printf '[access]\n"/admin/usage" = "billing"\n' >"$CLAUDEGATE_CONFIG"
expect_exit 2 "$CG" serve-local --mock-upstream --listen 127.0.0.1:0
expect_contains "$ERR" "claudegate.toml:2: access./admin/usage must be a non-empty list of role names"
pass
