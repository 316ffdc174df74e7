#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# issue → verify, and each failure's exit code and one-line reason.
source "$(dirname "$0")/common.sh"

expect_exit 2 "$CG" issue --sub alice
expect_contains "$ERR" "keygen"

expect_exit 0 "$CG" keygen
expect_exit 0 "$CG" issue --sub alice --plan pro
TOKEN=$OUT
[ "$(echo "$TOKEN" | tr -cd . | wc -c)" = 2 ] || fail "not a compact JWS: $TOKEN"
expect_exit 0 "$CG" verify "$TOKEN"
[ "$(json_get "$OUT" 'd["sub"]')" = alice ] || fail "claims: $OUT"
[ "$(json_get "$OUT" 'd["plan"]')" = pro ] || fail "claims: $OUT"
[ "$(json_get "$OUT" 'd["scope"]')" = "claude:messages" ] || fail "claims: $OUT"
[ "$(json_get "$OUT" 'd["exp"] - d["iat"]')" = 900 ] || fail "default ttl is not 15m: $OUT"
[ "$(json_get "$OUT" 'len(d["jti"]) >= 22')" = True ] || fail "jti too short: $OUT"

# Header is exactly {alg, typ, kid}.
expect_exit 0 "$CG" inspect "$TOKEN"
[ "$(json_get "$OUT" 'sorted(d["header"].keys())')" = "['alg', 'kid', 'typ']" ] || fail "header: $OUT"
[ "$(json_get "$OUT" 'd["header"]["typ"]')" = "at+jwt" ] || fail "typ: $OUT"
expect_contains "$ERR" "WITHOUT verification"

# stdin forms.
expect_exit 0 bash -c "echo '$TOKEN' | '$CG' verify -"
expect_exit 0 bash -c "echo '$TOKEN' | '$CG' verify"

# Tampered payload: exit 3 with the reason.
IFS=. read -r h p s <<<"$TOKEN"
evil_payload=$(printf '%s' "$p" | "$PY" -c 'import sys,base64,json
p=sys.stdin.read(); d=json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4))); d["plan"]="admin"
print(base64.urlsafe_b64encode(json.dumps(d,separators=(",",":")).encode()).rstrip(b"=").decode())')
expect_exit 3 "$CG" verify "$h.$evil_payload.$s"
expect_contains "$ERR" "signature"
[ "$(echo "$ERR" | wc -l)" = 1 ] || fail "reason is not one line: $ERR"
expect_exit 3 "$CG" verify --json "$h.$evil_payload.$s"
[ "$(json_get "$OUT" 'd["code"]')" = bad_signature ] || fail "json code: $OUT"
expect_exit 3 "$CG" verify "garbage"
expect_exit 3 "$CG" verify --json "a.b"
[ "$(json_get "$OUT" 'd["code"]')" = malformed ] || fail "json code: $OUT"

# Expired (verify as of two hours later): exit 4, names exp and leeway.
later=$(( $(date +%s) + 7200 ))
expect_exit 4 "$CG" verify --at "$later" "$TOKEN"
expect_contains "$ERR" "expired"
expect_contains "$ERR" "leeway 60s"
expect_exit 4 "$CG" verify --json --at "$later" "$TOKEN"
[ "$(json_get "$OUT" 'd["code"]')" = expired ] || fail "json code: $OUT"
# Not yet valid (as of an hour ago): exit 4.
expect_exit 4 "$CG" verify --at "$(( $(date +%s) - 3600 ))" "$TOKEN"
# Leeway widens the window; RFC 3339 --at works.
expect_exit 0 "$CG" verify --leeway 3h --at "$later" "$TOKEN"
expect_exit 0 "$CG" verify --at "$(date -u -d @$(( $(date +%s) + 60 )) +%Y-%m-%dT%H:%M:%SZ)" "$TOKEN"

# Claim policy: expected vs received in the message.
expect_exit 3 "$CG" verify --aud other-service "$TOKEN"
expect_contains "$ERR" "other-service"
expect_contains "$ERR" "claude-proxy"
expect_exit 0 "$CG" verify --aud other-service --aud claude-proxy "$TOKEN"
expect_exit 3 "$CG" verify --iss someone-else "$TOKEN"
expect_contains "$ERR" "someone-else"
expect_exit 3 "$CG" verify --scope admin:keys "$TOKEN"
expect_contains "$ERR" "admin:keys"
expect_exit 3 "$CG" verify --require email "$TOKEN"
expect_contains "$ERR" "email"

# Options flow into the claims.
expect_exit 0 "$CG" issue --sub ci --plan free --scope "claude:messages claude:models" --role dev --role ops \
  --daily-token-limit 1234 --claim team=infra --claim 'meta={"a":1}' --claim n=5 --ttl 90s --aud a2 --iss i2 --json
[ "$(json_get "$OUT" 'd["token_type"]')" = Bearer ] || fail "json: $OUT"
[ "$(json_get "$OUT" 'd["expires_in"]')" = 90 ] || fail "json: $OUT"
T2=$(json_get "$OUT" 'd["access_token"]')
expect_exit 0 "$CG" verify --aud a2 --iss i2 --scope claude:models "$T2"
[ "$(json_get "$OUT" 'd["roles"]')" = "['dev', 'ops']" ] || fail "roles: $OUT"
[ "$(json_get "$OUT" 'd["daily_token_limit"]')" = 1234 ] || fail "limit: $OUT"
[ "$(json_get "$OUT" 'd["meta"]["a"]')" = 1 ] || fail "json claim: $OUT"
[ "$(json_get "$OUT" 'd["n"]')" = 5 ] || fail "numeric claim: $OUT"
[ "$(json_get "$OUT" 'd["team"]')" = infra ] || fail "string claim: $OUT"

# Refused inputs: registered claim override, unknown plan, ttl above the maximum.
expect_exit 2 "$CG" issue --sub x --claim sub=root
expect_contains "$ERR" "sub"
expect_exit 2 "$CG" issue --sub x --claim exp=99999999999
expect_exit 2 "$CG" issue --sub x --plan platinum
expect_contains "$ERR" "platinum"
expect_exit 2 "$CG" issue --sub x --ttl 2d
expect_contains "$ERR" "max_access_ttl"
expect_exit 2 "$CG" issue --sub x --claim novalue
pass
