#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# API keys for a service: mint one (shown once), list it, call serve-local
# with it in x-api-key and as a Bearer token, rotate it with an overlap,
# revoke the old one (refused on the next request), and check that no
# secret reached the request log or the store.
source "$(dirname "$0")/../lib.sh"

step "keygen, then an API key for billing-svc on the pro plan (printed once, alone on stdout)"
"$CG" keygen
KEY=$("$CG" issue --api-key --sub billing-svc --plan pro --name billing --ttl 90d)
ID=${KEY#cgk_}
ID=${ID%%_*}
SECRET=${KEY#cgk_"$ID"_}
echo "minted cgk_${ID}_… (id $ID; the store keeps only the SHA-256 of the secret)"

step "revoke --list: the key's id, name, subject, plan, times and state, never its secret"
listing=$("$CG" revoke --list)
echo "$listing"
expect_contains "$listing" "$ID" "revoke --list"
case $listing in *"$SECRET"*) fail "revoke --list shows the secret" ;; esac

start_gateway
API=(-H "anthropic-version: 2023-06-01" -H "content-type: application/json")

step "POST /v1/messages with x-api-key: <key> (what the Anthropic SDKs send for ANTHROPIC_API_KEY)"
http "$GATEWAY/v1/messages" -H "x-api-key: $KEY" "${API[@]}" -d "$(message_body)"
expect_status 200
echo "$BODY"
echo "quota: $(header x-claudegate-quota-remaining) of $(header x-claudegate-quota-limit) tokens left today (plan pro)"

step "the same key as Authorization: Bearer <key>"
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $KEY" "${API[@]}" -d "$(message_body)"
expect_status 200

step "rotate: a new key for the same grant; the old one keeps working for the overlap (24h)"
NEW=$("$CG" issue --api-key --rotate "$ID" --overlap 24h)
NEW_ID=${NEW#cgk_}
NEW_ID=${NEW_ID%%_*}
echo "new key cgk_${NEW_ID}_…"
http "$GATEWAY/v1/messages" -H "x-api-key: $NEW" "${API[@]}" -d "$(message_body)"
expect_status 200
http "$GATEWAY/v1/messages" -H "x-api-key: $KEY" "${API[@]}" -d "$(message_body)"
expect_status 200
echo "both keys work during the overlap"

step "revoke the old key at once: the running gateway refuses it on the next request"
"$CG" revoke --api-key "$ID" --reason "rotated out"
http "$GATEWAY/v1/messages" -H "x-api-key: $KEY" "${API[@]}" -d "$(message_body)"
expect_status 401
echo "$BODY"
expect_contains "$BODY" "revoked" "401 body"
http "$GATEWAY/v1/messages" -H "x-api-key: $NEW" "${API[@]}" -d "$(message_body)"
expect_status 200
echo "the new key still works"

step "stop serve-local; the usage is metered under the key's subject"
stop_gateway
report=$("$CG" usage-report --by sub)
echo "$report"
expect_contains "$report" "billing-svc" "usage-report"
"$CG" revoke --list
for secret in "$SECRET" "${NEW#cgk_"$NEW_ID"_}"; do
  if grep -qF -- "$secret" "$GATEWAY_LOG"; then fail "a secret is in the request log"; fi
  if grep -qaF -- "$secret" "$CLAUDEGATE_HOME/claudegate.db"; then fail "a secret is in the store"; fi
done
echo "no secret in the request log or the store"
echo
echo "api-keys example: all checks passed"
