#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# claudegate.toml sets issuer, audience, ttls, plans and [serve] keys (each
# asserted, the plan, audience and [serve] through serve-local); flags beat the
# file; typos are errors.
source "$(dirname "$0")/common.sh"
expect_exit 0 "$CG" keygen
cat > "$CLAUDEGATE_HOME/claudegate.toml" <<'TOML'
issuer = "https://gate.example"
audience = "team-proxy"
access_ttl = "5m"
max_access_ttl = "2h"

[plans.team]
daily_token_limit = 1000
models = ["claude-haiku*"]

[serve]
listen = "127.0.0.1:0"
max_output_tokens = 100
TOML
expect_exit 0 "$CG" issue --sub alice --plan team --json
[ "$(json_get "$OUT" 'd["expires_in"]')" = 300 ] || fail "access_ttl: $OUT"
T=$(json_get "$OUT" 'd["access_token"]')
expect_exit 0 "$CG" verify "$T"
[ "$(json_get "$OUT" 'd["iss"]')" = "https://gate.example" ] || fail "issuer: $OUT"
[ "$(json_get "$OUT" 'd["aud"]')" = "team-proxy" ] || fail "audience: $OUT"
[ "$(json_get "$OUT" 'd["plan"]')" = "team" ] || fail "plan: $OUT"
# A token of the same issuer for the default audience fails verify under this file.
printf 'issuer = "https://gate.example"\n' >"$SCRATCH/issuer-only.toml"
OTHER=$(CLAUDEGATE_CONFIG=$SCRATCH/issuer-only.toml "$CG" issue --sub alice)
expect_exit 3 "$CG" verify "$OTHER"
expect_contains "$ERR" "team-proxy"
# The file's plan is known beside the built-in ones.
expect_exit 2 "$CG" issue --sub alice --plan nope
expect_contains "$ERR" "known plans: admin, free, pro, team"
# serve-local listens where [serve] says, enforces the plan's models and daily
# limit, [serve]'s max_output_tokens and the file's audience.
source "$(dirname "$0")/../../scripts/lib/serve_local.sh"
"$CG" serve-local --mock-upstream 2>"$SCRATCH/serve.err" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
URL=$(serve_local_url "$SCRATCH/serve.err" "$SERVER")
expect_not_contains "$URL" ":8787"
ask() { # model $1 [max_tokens $2 [token $3]]: prints the status line and headers, then the body
  curl -s -i "$URL/v1/messages" -H "x-api-key: ${3:-$T}" -H 'content-type: application/json' \
    -d "{\"model\":\"$1\",\"max_tokens\":${2:-50},\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}"
}
REPLY=$(ask claude-haiku-4-5)
expect_contains "$REPLY" "HTTP/1.1 200"
expect_contains "$REPLY" "x-claudegate-quota-limit: 1000"
REPLY=$(ask claude-sonnet-4-5)
expect_contains "$REPLY" "HTTP/1.1 403"
expect_contains "$REPLY" 'is not allowed on plan team'
REPLY=$(ask claude-haiku-4-5 101)
expect_contains "$REPLY" "HTTP/1.1 400"
expect_contains "$REPLY" "serve.max_output_tokens"
REPLY=$(ask claude-haiku-4-5 50 "$OTHER")
expect_contains "$REPLY" "HTTP/1.1 401"
kill "$SERVER"
wait "$SERVER" 2>/dev/null || true
expect_exit 2 "$CG" issue --sub alice --ttl 3h
expect_exit 0 "$CG" issue --sub alice --ttl 2h

# An explicit --config that does not exist, and a typo in the file: exit 2 naming the problem.
expect_exit 2 "$CG" --config "$SCRATCH/nope.toml" issue --sub a
expect_contains "$ERR" "nope.toml"
printf 'isuer = "x"\n' > "$SCRATCH/typo.toml"
expect_exit 2 "$CG" issue --sub a --config "$SCRATCH/typo.toml"
expect_contains "$ERR" "isuer"
printf 'access_ttl = "forever"\n' > "$SCRATCH/bad.toml"
CLAUDEGATE_CONFIG=$SCRATCH/bad.toml expect_exit 2 "$CG" issue --sub a
expect_contains "$ERR" "access_ttl"
pass
