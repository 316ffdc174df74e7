#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A claudegate.toml with two plans and [serve] settings: tokens on each plan,
# a sonnet model allowed on one and refused (403) on the other, the plans'
# daily limits, max_tokens and rpm, and the [serve] body limit.
source "$(dirname "$0")/../lib.sh"
export CLAUDEGATE_CONFIG
CLAUDEGATE_CONFIG=$(cd "$(dirname "$0")" && pwd)/claudegate.toml

step "CLAUDEGATE_CONFIG=$CLAUDEGATE_CONFIG"
grep -E '^\[|^(issuer|daily_token_limit|models|max_tokens|over_cap|rpm|body_limit) ' "$CLAUDEGATE_CONFIG"

step "keygen, and a token on each plan (the config must load: a bad file exits 2)"
"$CG" keygen
SUPPORT=$("$CG" issue --sub sam --plan support)
RESEARCH=$("$CG" issue --sub rita --plan research --ttl 12h)
claims=$("$CG" verify "$RESEARCH")
[ "$(json_get "$claims" 'd["iss"]')" = https://claudegate.example.com ] || fail "issuer from the file: $claims"
[ "$(json_get "$claims" 'd["plan"]')" = research ] || fail "plan claim: $claims"
echo "sam: plan support; rita: plan research; issuer $(json_get "$claims" 'd["iss"]')"
expect_exit 2 "$CG" issue --sub rita --plan research --ttl 13h
echo "--ttl 13h is above max_access_ttl 12h: exit 2"
expect_exit 2 "$CG" issue --sub x --plan nosuchplan
echo "an unknown plan: exit 2: $ERR"

# serve-local reads [serve] from the same file; --listen (a free port) beats its listen.
start_gateway
ask() { # token $1, model $2, max_tokens $3
  http "$GATEWAY/v1/messages" -H "x-api-key: $1" \
    -d "{\"model\":\"$2\",\"max_tokens\":${3:-100},\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}"
}

step "claude-sonnet-4-5: allowed on research, refused on support"
ask "$RESEARCH" claude-sonnet-4-5
echo "research: HTTP $STATUS (daily limit $(header x-claudegate-quota-limit))"
expect_status 200
[ "$(header x-claudegate-quota-limit)" = 2000000 ] || fail "research daily limit: $HEADERS"
ask "$SUPPORT" claude-sonnet-4-5
echo "support:  HTTP $STATUS $BODY"
expect_status 403
[ "$(json_get "$BODY" 'd["error"]["type"]')" = permission_error ] || fail "403 envelope: $BODY"

step "claude-haiku-4-5: allowed on both"
ask "$SUPPORT" claude-haiku-4-5
echo "support:  HTTP $STATUS (daily limit $(header x-claudegate-quota-limit))"
expect_status 200
[ "$(header x-claudegate-quota-limit)" = 100000 ] || fail "support daily limit: $HEADERS"

step "max_tokens: 4096 is over support's 2048 (over_cap = reject: 400), fine for research"
ask "$SUPPORT" claude-haiku-4-5 4096
echo "support:  HTTP $STATUS $(json_get "$BODY" 'd["error"]["message"]')"
expect_status 400
ask "$RESEARCH" claude-haiku-4-5 4096
echo "research: HTTP $STATUS"
expect_status 200
ask "$RESEARCH" claude-haiku-4-5 64000
echo "research, max_tokens 64000: HTTP $STATUS, lowered to $(header claudegate-max-tokens-clamped) (over_cap = clamp)"
expect_status 200
[ "$(header claudegate-max-tokens-clamped)" = 32000 ] || fail "research's cap was not applied by clamping: $HEADERS"

step "rpm = 5 on support: requests beyond five a minute get 429 with retry-after"
limited=""
for i in 1 2 3 4 5 6; do
  ask "$SUPPORT" claude-haiku-4-5
  if [ "$STATUS" = 429 ]; then
    echo "request $i: HTTP $STATUS, retry-after: $(header retry-after)"
    limited=$i
    break
  fi
  echo "request $i: HTTP $STATUS"
done
# Before these, support made one accepted request (and a 403 and a 400): at
# most 5 a minute means the 429 comes at request 3 (all counted) to 5.
[ -n "$limited" ] || fail "the support plan's rpm of 5 was not enforced"
[ "$limited" -ge 3 ] || fail "rpm 5 refused request $limited of the loop"
[ "$(json_get "$BODY" 'd["error"]["type"]')" = rate_limit_error ] || fail "429 envelope: $BODY"
[ -n "$(header retry-after)" ] || fail "429 without retry-after"

step "[serve] body_limit = 1MiB: a 2 MiB request gets 413"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' a | sed 's/^/{"pad":"/; s/$/"}/' >"$CLAUDEGATE_HOME/big.json"
http "$GATEWAY/v1/messages" -H "x-api-key: $RESEARCH" --data-binary "@$CLAUDEGATE_HOME/big.json"
echo "HTTP $STATUS $(json_get "$BODY" 'd["error"]["type"]')"
expect_status 413

step "usage by subject, with each plan's daily limit"
stop_gateway
report=$("$CG" usage-report --by sub)
echo "$report"
expect_contains "$report" "2,000,000" "usage-report research limit"
expect_contains "$report" "100,000" "usage-report support limit"

echo
echo "config-plans example: all checks passed"
