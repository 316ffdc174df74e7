#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# keygen: kid = thumbprint, modes, single active key, rotation, list, every algorithm.
source "$(dirname "$0")/common.sh"

expect_exit 0 "$CG" keygen
kid1=$OUT
[[ "$kid1" =~ ^[A-Za-z0-9_-]{43}$ ]] || fail "kid is not a base64url SHA-256: $kid1"
[ "$(mode_of "$CLAUDEGATE_HOME")" = 700 ] || fail "home mode $(mode_of "$CLAUDEGATE_HOME")"
[ "$(mode_of "$CLAUDEGATE_HOME/keys")" = 700 ] || fail "keys/ mode"
for f in "$CLAUDEGATE_HOME"/keys/*; do
  [ "$(mode_of "$f")" = 600 ] || fail "$f has mode $(mode_of "$f")"
done
grep -q 'BEGIN PRIVATE KEY' "$CLAUDEGATE_HOME/keys/$kid1.pem" || fail "key file is not PKCS#8"

# The kid is the RFC 7638 thumbprint of the public JWK (checked independently).
jwk=$("$CG" jwks)
"$PY" - "$jwk" "$kid1" <<'PY'
import base64, hashlib, json, sys
k = json.loads(sys.argv[1])["keys"][0]
canon = json.dumps({"e": k["e"], "kty": k["kty"], "n": k["n"]}, separators=(",", ":"), sort_keys=True)
tp = base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()
assert tp == sys.argv[2] == k["kid"], (tp, sys.argv[2], k["kid"])
PY

# A second key without --rotate would silently change the signer: refused.
expect_exit 2 "$CG" keygen
expect_contains "$ERR" "--rotate"

expect_exit 0 "$CG" keygen --rotate --alg ES256
kid2=$OUT
[ "$kid2" != "$kid1" ] || fail "rotation reused the kid"
expect_exit 0 "$CG" keygen --list --json
[ "$(json_get "$OUT" '[k["state"] for k in d["keys"] if k["kid"]=="'"$kid1"'"][0]')" = published ] || fail "old key not published: $OUT"
[ "$(json_get "$OUT" '[k["state"] for k in d["keys"] if k["kid"]=="'"$kid2"'"][0]')" = active ] || fail "new key not active: $OUT"
expect_exit 0 "$CG" keygen --list
expect_contains "$OUT" "published"

# Tokens are signed by the new key; tokens of the old one still verify.
expect_exit 0 "$CG" issue --sub bob --json
[ "$(json_get "$OUT" 'd["kid"]')" = "$kid2" ] || fail "issue did not sign with the active key"

# Every algorithm, in its own home.
for alg in RS256 RS384 RS512 PS256 ES256 ES384 EdDSA HS256; do
  export CLAUDEGATE_HOME=$SCRATCH/home-$alg
  expect_exit 0 "$CG" keygen --alg "$alg"
  expect_exit 0 "$CG" issue --sub "ci-$alg"
  token=$OUT
  expect_exit 0 "$CG" verify "$token"
  expect_contains "$OUT" "ci-$alg"
done
export CLAUDEGATE_HOME=$SCRATCH/home-bits
expect_exit 0 "$CG" keygen --bits 3072 --json
[ "$(json_get "$OUT" 'd["bits"]')" = 3072 ] || fail "--bits ignored: $OUT"
expect_exit 2 "$CG" keygen --rotate --alg ES256 --bits 3072
expect_contains "$ERR" "--bits"
# A slow RSA keygen shows a spinner on a terminal and nothing when piped.
expect_exit 0 "$CG" keygen --rotate --bits 4096
[ -z "$ERR" ] || fail "progress written to a pipe: $ERR"
if command -v script >/dev/null; then
  tty_out=$(script -qec "$CG keygen --rotate --bits 4096" /dev/null)
  expect_contains "$tty_out" "generating RS256 key (4096 bits)"
fi
pass
