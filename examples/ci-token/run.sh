#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A CI job mints a 10-minute token for its own subject on a dedicated `ci` plan,
# calls the gateway with curl, and revokes the token when it is done.
source "$(dirname "$0")/../lib.sh"

step "operator, once: a signing key and a [plans.ci] table in claudegate.toml"
"$CG" keygen
cat >"$CLAUDEGATE_HOME/claudegate.toml" <<'TOML'
# A small, cheap plan for CI jobs: haiku only, short answers, a low daily budget.
[plans.ci]
daily_token_limit = 20000
models = ["claude-haiku*", "claude-3-5-haiku*"]
max_tokens = 1024
rpm = 30
max_concurrent = 2
TOML
cat "$CLAUDEGATE_HOME/claudegate.toml"
start_gateway

step "CI secrets: the signing key (PEM) and the config, as a CI system would hand them to a job"
RUNNER=$CLAUDEGATE_HOME/ci-runner
mkdir -m 700 "$RUNNER"
install -m 600 "$CLAUDEGATE_HOME"/keys/*.pem "$RUNNER/signing-key.pem"
cp "$CLAUDEGATE_HOME/claudegate.toml" "$RUNNER/claudegate.toml"

step "CI job: import the key into a fresh home, mint a 10-minute token for this run"
CLAUDEGATE_HOME_CI=$RUNNER/home
ci() { CLAUDEGATE_HOME=$CLAUDEGATE_HOME_CI CLAUDEGATE_CONFIG=$RUNNER/claudegate.toml "$CG" "$@"; }
ci keygen --import "$RUNNER/signing-key.pem"
SUBJECT="ci:acme/webapp:run-1234"
ci issue --sub "$SUBJECT" --plan ci --role ci --ttl 10m --claim run_id=1234 --json >"$RUNNER/token.json"
TOKEN=$(json_get "$(cat "$RUNNER/token.json")" 'd["access_token"]')
expires_in=$(json_get "$(cat "$RUNNER/token.json")" 'd["expires_in"]')
echo "token for $SUBJECT: ${TOKEN:0:40}… (expires in ${expires_in}s)"
[ "$expires_in" = 600 ] || fail "--ttl 10m gave expires_in $expires_in"

step "the gateway accepts it: the same key, so the same kid"
expect_exit 0 "$CG" verify "$TOKEN"
echo "$OUT"
[ "$(json_get "$OUT" 'd["sub"]')" = "$SUBJECT" ] || fail "subject: $OUT"
[ "$(json_get "$OUT" 'd["plan"]')" = ci ] || fail "plan: $OUT"

step "CI job: call Claude through the gateway with curl"
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $TOKEN" \
  -H "anthropic-version: 2023-06-01" -H "content-type: application/json" \
  -d '{"model":"claude-haiku-4-5","max_tokens":200,"messages":[{"role":"user","content":"Summarise the test run"}]}'
expect_status 200
echo "HTTP $STATUS: $(json_get "$BODY" 'd["content"][0]["text"][:60]')…"
echo "x-claudegate-quota-remaining: $(header x-claudegate-quota-remaining) of $(header x-claudegate-quota-limit)"
[ "$(header x-claudegate-quota-limit)" = 20000 ] || fail "the ci plan's daily limit was not applied: $HEADERS"

step "the ci plan keeps the job to its models and budget"
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $TOKEN" -d "$(message_body claude-sonnet-4-5)"
expect_status 403
echo "sonnet: HTTP $STATUS $(json_get "$BODY" 'd["error"]["message"]')"
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $TOKEN" \
  -d '{"model":"claude-haiku-4-5","max_tokens":4096,"messages":[{"role":"user","content":"Hi"}]}'
echo "max_tokens 4096 (plan allows 1024): HTTP $STATUS, lowered to $(header claudegate-max-tokens-clamped)"
expect_status 200
[ "$(header claudegate-max-tokens-clamped)" = 1024 ] || fail "max_tokens was not lowered to the plan's 1024: $HEADERS"

step "ten minutes later the token is dead on its own (verify as of +11 minutes: exit 4)"
expect_exit 4 "$CG" verify --at "$(($(date +%s) + 660))" "$TOKEN"
echo "$ERR"

step "CI job, last step: revoke the token at once (RFC 7009 /auth/revoke, no key needed)"
http "$GATEWAY/auth/revoke" --data-urlencode "token=$TOKEN"
expect_status 200
http "$GATEWAY/v1/messages" -H "Authorization: Bearer $TOKEN" -d "$(message_body)"
expect_status 401
echo "after revoke: HTTP $STATUS $(json_get "$BODY" 'd["error"]["message"]')"

step "the operator sees what the CI subject spent"
stop_gateway
report=$("$CG" usage-report --by sub)
echo "$report"
expect_contains "$report" "$SUBJECT" "usage-report"
echo
echo "ci-token example: all checks passed"
