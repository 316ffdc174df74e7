#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Interop with an independent implementation (PyJWT): our tokens verify in
# PyJWT from our JWKS (PyJWKSet), and PyJWT's tokens verify with us.
source "$(dirname "$0")/common.sh"
"$PY" -c 'import jwt, cryptography' 2>/dev/null || { echo "SKIP: python3-jwt missing"; exit 77; }
check=$(dirname "$0")/../interop/pyjwt_check.py

for alg in RS256 RS384 RS512 PS256 ES256 ES384 EdDSA; do
  export CLAUDEGATE_HOME=$SCRATCH/ours-$alg
  expect_exit 0 "$CG" keygen --alg "$alg"
  token=$("$CG" issue --sub "to-pyjwt-$alg")
  "$CG" jwks --out "$SCRATCH/jwks-$alg.json"
  got=$("$PY" "$check" verify "$SCRATCH/jwks-$alg.json" "$token" claude-proxy claudegate) \
    || fail "PyJWT rejected our $alg token"
  [ "$got" = "to-pyjwt-$alg" ] || fail "PyJWT saw sub '$got'"
done

for alg in RS256 RS384 RS512 PS256 ES256 ES384 EdDSA HS256; do
  export CLAUDEGATE_HOME=$SCRATCH/theirs-$alg
  dir=$SCRATCH/pykey-$alg; mkdir -p "$dir"
  "$PY" "$check" keypair "$alg" "$dir"
  file=$(ls "$dir"/key.*)
  expect_exit 0 "$CG" keygen --import "$file" --alg "$alg"
  kid=$OUT
  token=$("$PY" "$check" sign "$alg" "$dir" "$kid" claude-proxy claudegate "from-pyjwt-$alg")
  expect_exit 0 "$CG" verify "$token"
  [ "$(json_get "$OUT" 'd["sub"]')" = "from-pyjwt-$alg" ] || fail "claims: $OUT"
  # A one-bit change in PyJWT's signature must fail with us.
  expect_exit 3 "$CG" verify "${token%?}$( [ "${token: -1}" = A ] && echo B || echo A)"
done
pass
