#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# API keys at serve-local: a key works in x-api-key and as a Bearer, gets its
# plan's models and daily quota and is metered under its subject (jti = key
# id); a revoked key, or one whose subject was revoked (revoke --sub), is
# refused on the very next request (the warm cache follows the revocation
# epoch); a rotated key works during its overlap and is refused after it
# while its successor works; a wrong secret is 401; no secret ever reaches
# the request log, /metrics or an error message.
source "$(dirname "$0")/proxy_common.sh"

cat >"$SCRATCH/claudegate.toml" <<'TOML'
[plans.tiny]
models = ["claude-haiku-*"]
daily_token_limit = 400
TOML
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
KEY=$("$CG" issue --api-key --sub billing-svc --plan pro --name billing)
TINY=$("$CG" issue --api-key --sub tiny-svc --plan tiny)
OLD=$("$CG" issue --api-key --sub rotating-svc --plan pro)
id_of() { local rest=${1#cgk_}; echo "${rest%%_*}"; }
secret_of() { local rest=${1#cgk_}; echo "${rest#*_}"; }
ANTHROPIC_API_KEY= start_server --mock-upstream

# Both headers carry a key, like a token.
call "$BASE/v1/messages" -H "x-api-key: $KEY" -d "$MSG"
expect_status 200
call "$BASE/v1/messages" -H "Authorization: Bearer $KEY" -d "$MSG"
expect_status 200
rows=$(ledger "select count(*) from usage_ledger where subject='billing-svc' and jti='$(id_of "$KEY")'")
[ "$rows" = 2 ] || fail "expected 2 ledger rows under billing-svc with the key id as jti, got $rows"
[ -n "$(ledger "select last_used_at from api_keys where id='$(id_of "$KEY")'")" ] || fail "last use not recorded"

# The key's plan: its models and its daily quota.
call "$BASE/v1/messages" -H "x-api-key: $TINY" \
  -d '{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}'
expect_status 403
expect_envelope permission_error
for i in $(seq 1 10); do
  call "$BASE/v1/messages" -H "x-api-key: $TINY" -d "$MSG"
  [ "$STATUS" = 200 ] || break
done
expect_status 429
expect_envelope rate_limit_error
expect_contains "$BODY" "quota"
used=$(ledger "select sum(input_tokens + output_tokens) from usage_ledger where subject='tiny-svc'")
[ "$used" -le 400 ] || fail "tiny-svc used $used tokens, above its plan's 400"

# A wrong secret is 401 and names the key id, never a secret.
wrong=$(secret_of "$KEY"); wrong="cgk_$(id_of "$KEY")_$([ "${wrong:0:1}" = A ] && echo B || echo A)${wrong:1}"
call "$BASE/v1/messages" -H "x-api-key: $wrong" -d "$MSG"
expect_status 401
expect_envelope authentication_error
expect_contains "$BODY" "$(id_of "$KEY")"
expect_not_contains "$BODY" "${wrong:22:20}"
call "$BASE/v1/messages" -H "x-api-key: cgk_0123456789abcdef_nope" -d "$MSG"
expect_status 401

# Revoked: refused on the next request, although the key is warm.
"$CG" revoke --api-key "$(id_of "$KEY")" --reason leaked >/dev/null
call "$BASE/v1/messages" -H "x-api-key: $KEY" -d "$MSG"
expect_status 401
expect_contains "$BODY" "revoked"

# revoke --sub stops the subject's keys like its tokens.
"$CG" revoke --sub tiny-svc --reason offboarded >/dev/null
call "$BASE/v1/models" -H "x-api-key: $TINY"
expect_status 401
expect_contains "$BODY" "tiny-svc"

# Rotated with a 2 s overlap: both work, then only the new one.
NEW=$("$CG" issue --api-key --rotate "$(id_of "$OLD")" --overlap 2s)
call "$BASE/v1/messages" -H "x-api-key: $NEW" -d "$MSG"
expect_status 200
call "$BASE/v1/messages" -H "x-api-key: $OLD" -d "$MSG"
expect_status 200
for i in $(seq 1 100); do
  call "$BASE/v1/messages" -H "x-api-key: $OLD" -d "$MSG"
  [ "$STATUS" = 200 ] || break
  sleep 0.1
done
expect_status 401
expect_contains "$BODY" "rotated"
call "$BASE/v1/messages" -H "x-api-key: $NEW" -d "$MSG"
expect_status 200
jtis=$(ledger "select count(distinct jti) from usage_ledger where subject='rotating-svc' and jti in ('$(id_of "$OLD")', '$(id_of "$NEW")')")
[ "$jtis" = 2 ] || fail "the old and new keys' requests are not both metered under rotating-svc"

# No secret anywhere: request log, /metrics, the store.
call "$BASE/metrics"
expect_status 200
METRICS=$BODY
stop_server
DUMP=$(sqlite3 "$CLAUDEGATE_HOME/claudegate.db" .dump)
for key in "$KEY" "$TINY" "$OLD" "$NEW"; do
  secret=$(secret_of "$key")
  for where in SERVER_LOG METRICS DUMP; do
    case $where in SERVER_LOG) text=$(cat "$SERVER_LOG") ;; *) text=${!where} ;; esac
    case "$text" in *"$secret"*) fail "a key's secret appears in $where" ;; esac
  done
done
wait_log "$(id_of "$OLD")"
pass
