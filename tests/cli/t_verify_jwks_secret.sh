#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# verify --jwks FILE with an oct (HS256) key: from a 0600 file it verifies;
# from a file others can read it is refused (exit 2) with the kid, the
# file, its mode and the chmod 600 fix, never dropped into "unknown kid".
source "$(dirname "$0")/common.sh"
expect_exit 0 "$CG" keygen --alg HS256
kid=$OUT
token=$("$CG" issue --sub hs-user)
jwks=$SCRATCH/jwks.json
"$PY" -c 'import json,sys; print(json.dumps({"keys": [json.load(open(sys.argv[1]))]}))' \
  "$CLAUDEGATE_HOME/keys/$kid.jwk" >"$jwks"
export CLAUDEGATE_HOME=$SCRATCH/elsewhere # no keyring: the JWKS file alone

chmod 600 "$jwks"
expect_exit 0 "$CG" verify --jwks "$jwks" "$token"
expect_contains "$OUT" hs-user

for mode in 644 640; do
  chmod "$mode" "$jwks"
  expect_exit 2 "$CG" verify --jwks "$jwks" "$token"
  expect_contains "$ERR" "key $kid is a secret (oct) in $jwks"
  expect_contains "$ERR" "(mode 0$mode)"
  expect_contains "$ERR" "chmod 600 $jwks"
  expect_not_contains "$ERR" "unknown kid"
done
# With --json the same refusal, as a JSON error on stderr.
expect_exit 2 "$CG" verify --json --jwks "$jwks" "$token"
[ "$(json_get "$ERR" 'd["error"]["code"]')" = config ] || fail "json error: $ERR"
pass
