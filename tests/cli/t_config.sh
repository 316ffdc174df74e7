#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# claudegate.toml sets issuer, audience, ttls and plans; flags beat the file; typos are errors.
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
TOML
expect_exit 0 "$CG" issue --sub alice --plan team --json
[ "$(json_get "$OUT" 'd["expires_in"]')" = 300 ] || fail "access_ttl: $OUT"
T=$(json_get "$OUT" 'd["access_token"]')
expect_exit 0 "$CG" verify "$T"
[ "$(json_get "$OUT" 'd["iss"]')" = "https://gate.example" ] || fail "issuer: $OUT"
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
