#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# keygen --import: keys made by the openssl CLI (PKCS#1, PKCS#8, SEC1, Ed25519) and JWKs.
source "$(dirname "$0")/common.sh"
k=$SCRATCH/k; mkdir -p "$k"

openssl genrsa -traditional -out "$k/rsa1.pem" 2048 2>/dev/null
grep -q 'BEGIN RSA PRIVATE KEY' "$k/rsa1.pem" || fail "openssl did not write PKCS#1"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$k/rsa8.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$k/ec256.pem"
grep -q 'BEGIN EC PRIVATE KEY' "$k/ec256.pem" || fail "openssl did not write SEC1"
openssl ecparam -name secp384r1 -genkey -noout -out "$k/ec384.pem"
openssl genpkey -algorithm ed25519 -out "$k/ed.pem"
openssl genrsa -out "$k/small.pem" 1024 2>/dev/null
openssl pkey -in "$k/rsa8.pem" -pubout -out "$k/pub.pem"

check_import() { # file, expected alg, [extra keygen args]
  local file=$1 alg=$2; shift 2
  export CLAUDEGATE_HOME=$SCRATCH/home-$(basename "$file")-$alg
  expect_exit 0 "$CG" keygen --import "$file" --json "$@"
  [ "$(json_get "$OUT" 'd["alg"]')" = "$alg" ] || fail "$file imported as $(json_get "$OUT" 'd["alg"]'), want $alg"
  expect_exit 0 "$CG" issue --sub imported
  expect_exit 0 "$CG" verify "$OUT"
}
check_import "$k/rsa1.pem" RS256
check_import "$k/rsa8.pem" RS256
check_import "$k/rsa8.pem" PS256 --alg PS256
check_import "$k/rsa8.pem" RS512 --alg RS512
check_import "$k/ec256.pem" ES256
check_import "$k/ec384.pem" ES384
check_import "$k/ed.pem" EdDSA

# Keys that cannot serve: wrong algorithm for the key, too small, public only.
export CLAUDEGATE_HOME=$SCRATCH/home-bad
expect_exit 3 "$CG" keygen --import "$k/ec256.pem" --alg ES384
expect_exit 3 "$CG" keygen --import "$k/rsa8.pem" --alg HS256
expect_exit 3 "$CG" keygen --import "$k/small.pem"
expect_contains "$ERR" "2048"
expect_exit 2 "$CG" keygen --import "$k/pub.pem"
expect_contains "$ERR" "public key only"
echo "not a key" > "$k/junk.pem"
expect_exit 3 "$CG" keygen --import "$k/junk.pem"
expect_exit 2 "$CG" keygen --import "$k/does-not-exist.pem"

# A JWK (the RFC 7520 RSA private key) imports with the same thumbprint PyJWT computes.
if [ -d "${CLAUDEGATE_VECTORS_DIR:-/nonexistent}" ]; then
  jwk=$CLAUDEGATE_VECTORS_DIR/rfc/jose-cookbook/jwk/3_4.rsa_private_key.json
  export CLAUDEGATE_HOME=$SCRATCH/home-jwk
  expect_exit 0 "$CG" keygen --import "$jwk" --alg RS256
  want=$("$PY" -c 'import json,sys,jwt
k=jwt.PyJWK.from_json(open(sys.argv[1]).read(), algorithm="RS256")
from jwt.algorithms import RSAAlgorithm
import hashlib,base64
pub=json.loads(RSAAlgorithm.to_jwk(k.key.public_key()))
c=json.dumps({"e":pub["e"],"kty":"RSA","n":pub["n"]},separators=(",",":"),sort_keys=True)
print(base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b"=").decode())' "$jwk")
  [ "$OUT" = "$want" ] || fail "JWK import kid $OUT, want $want"
fi
pass
