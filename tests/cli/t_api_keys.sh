#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# API keys from the shell: `issue --api-key` prints cgk_<id>_<secret> alone
# (--json: api_key, id, name, sub, plan, scope, expires_at); `revoke --list`
# shows the key (id, name, subject, plan, times, state) without its secret
# or hash; `--rotate ID --overlap` mints a successor of the same grant and
# retires the old key at the end of the overlap; `revoke --api-key ID`
# revokes (idempotent); the store holds no secret; bad usage is exit 2 and
# an unknown id exit 3.
# store-backends: sqlite postgresql
source "$(dirname "$0")/common.sh"
if [ "$STORE_BACKEND" = sqlite ]; then
  command -v sqlite3 >/dev/null || { echo "SKIPPED: sqlite3 not installed"; exit 77; }
fi

id_of() { local rest=${1#cgk_}; echo "${rest%%_*}"; }
secret_of() { local rest=${1#cgk_}; echo "${rest#*_}"; }

expect_exit 0 "$CG" issue --api-key --sub billing-svc --plan pro --scope "claude:messages claude:models" \
  --role ops --ttl 30d --name billing
KEY=$OUT
[[ "$KEY" =~ ^cgk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$ ]] || fail "not a cgk_ key alone on stdout: $OUT"
ID=$(id_of "$KEY")
SECRET=$(secret_of "$KEY")

expect_exit 0 "$CG" issue --api-key --sub reports --plan free --json
JSON=$OUT
[ "$(json_get "$JSON" 'd["sub"]')" = reports ] || fail "--json sub: $JSON"
[ "$(json_get "$JSON" 'd["plan"]')" = free ] || fail "--json plan: $JSON"
[ "$(json_get "$JSON" 'd["scope"]')" = claude:messages ] || fail "--json scope: $JSON"
[ "$(json_get "$JSON" 'd["expires_in"]')" = $((90 * 86400)) ] || fail "default lifetime is 90d: $JSON"
JSON_KEY=$(json_get "$JSON" 'd["api_key"]')
[ "$(id_of "$JSON_KEY")" = "$(json_get "$JSON" 'd["id"]')" ] || fail "--json id is not the key's id: $JSON"

# Listed without secret or hash.
expect_exit 0 "$CG" revoke --list
expect_contains "$OUT" "$ID"
expect_contains "$OUT" billing-svc
expect_contains "$OUT" active
HASH=$(store_sql "select secret_hash from api_keys where id='$ID'")
[ -n "$HASH" ] || fail "no stored hash for $ID"
expect_not_contains "$OUT" "$SECRET"
expect_not_contains "$OUT" "$HASH"
expect_exit 0 "$CG" revoke --list --json
[ "$(json_get "$OUT" '[k["name"] for k in d["api_keys"] if k["id"] == "'"$ID"'"][0]')" = billing ] \
  || fail "--list --json lacks key $ID: $OUT"
[ "$(json_get "$OUT" '[k["roles"] for k in d["api_keys"] if k["id"] == "'"$ID"'"][0]')" = "['ops']" ] \
  || fail "--list --json lacks the key's roles: $OUT"
expect_not_contains "$OUT" "$SECRET"
expect_not_contains "$OUT" "$HASH"
expect_not_contains "$OUT" secret

# Rotation: a new key with the same grant; the old one retiring until now + overlap.
expect_exit 0 "$CG" issue --api-key --rotate "$ID" --overlap 24h --json
NEW_ID=$(json_get "$OUT" 'd["id"]')
NEW_KEY=$(json_get "$OUT" 'd["api_key"]')
[ "$NEW_ID" != "$ID" ] || fail "rotation reused the id"
[ "$(json_get "$OUT" 'd["sub"]')" = billing-svc ] || fail "rotation changed the subject: $OUT"
[ "$(json_get "$OUT" 'd["scope"]')" = "claude:messages claude:models" ] || fail "rotation changed the grant: $OUT"
[ "$(json_get "$OUT" 'd["rotated_from"]')" = "$ID" ] || fail "rotated_from: $OUT"
expect_exit 0 "$CG" revoke --list --json
retires=$(json_get "$OUT" '[k["retires_at"] for k in d["api_keys"] if k["id"] == "'"$ID"'"][0]')
state=$(json_get "$OUT" '[k["state"] for k in d["api_keys"] if k["id"] == "'"$ID"'"][0]')
[ "$state" = retiring ] || fail "old key state after rotation: $state"
want=$(( $(date -u +%s) + 86400 ))
got=$(date -u -d "$retires" +%s)
[ $((got - want)) -le 5 ] && [ $((want - got)) -le 5 ] || fail "retires_at $retires is not now + 24h"

# Revoke: listed as revoked, idempotent; the successor stays active.
expect_exit 0 "$CG" revoke --api-key "$ID" --reason leaked
expect_contains "$OUT" "$ID"
expect_exit 0 "$CG" revoke --api-key "$ID"
expect_exit 0 "$CG" revoke --list --json
[ "$(json_get "$OUT" '[k["state"] for k in d["api_keys"] if k["id"] == "'"$ID"'"][0]')" = revoked ] \
  || fail "revoked key not listed as revoked: $OUT"
[ "$(json_get "$OUT" '[k["state"] for k in d["api_keys"] if k["id"] == "'"$NEW_ID"'"][0]')" = active ] \
  || fail "successor not active: $OUT"
expect_exit 5 "$CG" issue --api-key --rotate "$ID"
expect_contains "$ERR" revoked
[ "$(store_sql "select count(*) from audit_events where detail like '%$ID%'")" -ge 1 ] \
  || fail "revocation not audited"

# The store holds hashes only.
DUMP=$(store_dump)
expect_contains "$DUMP" "$NEW_ID"
for key in "$KEY" "$JSON_KEY" "$NEW_KEY"; do
  case "$DUMP" in *"$(secret_of "$key")"*) fail "a key's secret is in the store" ;; esac
done

# Usage errors (2) and unknown ids (3), with what to do.
expect_exit 2 "$CG" issue --rotate "$NEW_ID"
expect_contains "$ERR" "--api-key"
expect_exit 2 "$CG" issue --api-key --plan pro
expect_contains "$ERR" "--sub"
expect_exit 2 "$CG" issue --api-key --rotate "$NEW_ID" --sub someone
expect_exit 2 "$CG" issue --api-key --sub x --refresh
expect_exit 2 "$CG" issue --api-key --sub x --overlap 1h
expect_exit 2 "$CG" issue --api-key --sub x --plan nosuch
expect_exit 2 "$CG" issue --api-key --rotate "$NEW_ID" --overlap soon
expect_exit 3 "$CG" issue --api-key --rotate 0123456789abcdef
expect_contains "$ERR" "unknown API key 0123456789abcdef"
expect_exit 3 "$CG" revoke --api-key 0123456789abcdef
expect_contains "$ERR" "revoke --list"
expect_exit 2 "$CG" revoke --api-key "$NEW_KEY"
expect_not_contains "$ERR" "$(secret_of "$NEW_KEY")"
expect_exit 2 "$CG" revoke --api-key "$NEW_ID" --jti x
pass
