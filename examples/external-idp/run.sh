#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Tokens from an external identity provider: a fake IdP (python3 + PyJWT)
# signs RS256 tokens and serves its JWKS on a free loopback port; claudegate
# verify --jwks URL checks them, and serve-local --jwks URL accepts them next
# to its own tokens.
source "$(dirname "$0")/../lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

# A Python with PyJWT and cryptography (a pyenv python3 on PATH may lack them).
PY=""
for candidate in "${PYTHON:-}" python3 /usr/bin/python3; do
  if [ -n "$candidate" ] && "$candidate" -c 'import jwt, cryptography' 2>/dev/null; then
    PY=$candidate
    break
  fi
done
[ -n "$PY" ] || skip "the fake IdP needs python3 with PyJWT and cryptography (Debian: apt install python3-jwt python3-cryptography)"

step "the fake IdP: an RSA key, its JWKS on a free loopback port"
"$PY" "$HERE/fake_idp.py" "$CLAUDEGATE_HOME/idp.port" &
track_pid $!
for ((i = 0; i < 100; i++)); do
  [ -s "$CLAUDEGATE_HOME/idp.port" ] && break
  sleep 0.1
done
[ -s "$CLAUDEGATE_HOME/idp.port" ] || fail "the fake IdP did not start"
IDP=http://127.0.0.1:$(cat "$CLAUDEGATE_HOME/idp.port")
ISSUER=$IDP/
JWKS_URL=$IDP/.well-known/jwks.json
echo "issuer $ISSUER, keys at $JWKS_URL"
JWKS=$(curl -sf "$JWKS_URL") || fail "no JWKS at $JWKS_URL"
json_get "$JWKS" '[{m: k[m] if m != "n" else k[m][:24] + "…" for m in ("kty", "kid", "alg", "use", "n", "e")} for k in d["keys"]]'

# A token from the IdP; "$@" are query parameters (sub=…, aud=…, ttl=…, plan=…).
idp_token() {
  local query
  query=$(IFS='&'; echo "$*")
  json_get "$(curl -sf "$IDP/token?$query")" 'd["access_token"]'
}

step "the IdP signs an access token for alice@example.com (RS256, typ JWT, its own kid)"
TOKEN=$(idp_token sub=alice@example.com)
"$CG" inspect "$TOKEN" 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"header": d["header"], "iss": d["claims"]["iss"], "sub": d["claims"]["sub"]}))'

step "claudegate verify --jwks URL: keys fetched from the IdP, issuer and audience checked"
expect_exit 0 "$CG" verify --jwks "$JWKS_URL" --iss "$ISSUER" --aud claude-proxy "$TOKEN"
echo "$OUT"
[ "$(json_get "$OUT" 'd["sub"]')" = alice@example.com ] || fail "verified subject: $OUT"

step "what verify refuses"
expect_exit 3 "$CG" verify --jwks "$JWKS_URL" --iss "$ISSUER" --aud claude-proxy "$(idp_token sub=alice@example.com aud=another-api)"
echo "another audience (exit 3): $ERR"
expect_exit 3 "$CG" verify --jwks "$JWKS_URL" --iss "https://login.example.com/" --aud claude-proxy "$TOKEN"
echo "another issuer (exit 3): $ERR"
expect_exit 4 "$CG" verify --jwks "$JWKS_URL" --iss "$ISSUER" --aud claude-proxy "$(idp_token sub=alice@example.com ttl=-3600)"
echo "expired (exit 4): $ERR"
"$CG" keygen >/dev/null
expect_exit 3 "$CG" verify --jwks "$JWKS_URL" --iss "$ISSUER" --aud claude-proxy "$("$CG" issue --sub mallory --iss "$ISSUER")"
echo "signed by another key, right issuer (exit 3): $ERR"

step "serve-local --jwks URL --jwks-iss ISSUER: IdP tokens and claudegate's own tokens, side by side"
start_gateway --jwks "$JWKS_URL" --jwks-iss "$ISSUER" --jwks-plan free
LOCAL=$("$CG" issue --sub ci-bot --plan pro)
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $TOKEN" -d "$(message_body)"
echo "IdP token (alice@example.com, plan free by default): HTTP $STATUS, daily limit $(header x-claudegate-quota-limit)"
expect_status 200
[ "$(header x-claudegate-quota-limit)" = 50000 ] || fail "the IdP token did not get the free plan: $HEADERS"
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $TOKEN" -d "$(message_body claude-sonnet-4-5)"
echo "IdP token, plan free, a sonnet model: HTTP $STATUS"
expect_status 403
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $(idp_token sub=bob@example.com plan=pro)" \
  -d "$(message_body claude-sonnet-4-5)"
echo "IdP token claiming plan pro (bob@example.com), a sonnet model: HTTP $STATUS (the IdP's claims never widen --jwks-plan)"
expect_status 403
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $LOCAL" -d "$(message_body claude-sonnet-4-5)"
echo "claudegate token (ci-bot, plan pro): HTTP $STATUS"
expect_status 200
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $(idp_token sub=alice@example.com aud=another-api)" -d "$(message_body)"
echo "IdP token for another audience: HTTP $STATUS"
expect_status 401

step "usage is metered per IdP subject, namespaced by issuer (ISS|sub) apart from local subjects"
stop_gateway
report=$("$CG" usage-report --by sub)
echo "$report"
expect_contains "$("$CG" usage-report --by sub --format csv)" "${ISSUER}|alice@example.com" "usage-report"

echo
echo "external-idp example: all checks passed"
