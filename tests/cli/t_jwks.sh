#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# jwks: public keys of active + published keys only; --out is atomic; verify --jwks FILE.
source "$(dirname "$0")/common.sh"
expect_exit 0 "$CG" keygen
kid1=$OUT
old_token=$("$CG" issue --sub old)
expect_exit 0 "$CG" keygen --rotate --alg EdDSA
kid2=$OUT
expect_exit 0 "$CG" jwks
doc=$OUT
[ "$(json_get "$doc" 'sorted(k["kid"] for k in d["keys"])')" = "$(json_get '["'"$kid1"'","'"$kid2"'"]' 'sorted(d)')" ] || fail "keys: $doc"
expect_not_contains "$doc" '"d"'
expect_not_contains "$doc" '"p"'
[ "$(json_get "$doc" 'all(k["use"]=="sig" for k in d["keys"])')" = True ] || fail "use: $doc"

expect_exit 0 "$CG" jwks --out "$SCRATCH/jwks.json"
cmp -s <(echo "$doc") "$SCRATCH/jwks.json" || fail "--out differs from stdout"
ls "$SCRATCH" | grep -qv -e jwks.json -e home -e out -e err && fail "temp file left behind: $(ls "$SCRATCH")"

# Verify with the JWKS file alone (no keyring), e.g. on another machine.
new_token=$("$CG" issue --sub new)
CLAUDEGATE_HOME=$SCRATCH/empty expect_exit 0 "$CG" verify --jwks "$SCRATCH/jwks.json" "$old_token"
CLAUDEGATE_HOME=$SCRATCH/empty expect_exit 0 "$CG" verify --jwks "$SCRATCH/jwks.json" "$new_token"

# HS256 secrets are never published.
export CLAUDEGATE_HOME=$SCRATCH/hs
expect_exit 0 "$CG" keygen --alg HS256
expect_exit 0 "$CG" jwks
[ "$(json_get "$OUT" 'len(d["keys"])')" = 0 ] || fail "HS256 key published: $OUT"
expect_not_contains "$OUT" '"k"'
pass
