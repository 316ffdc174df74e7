#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Signatures cross-checked with OpenSSL's command line, independent of our code:
# openssl verifies what we sign, and we verify what openssl signs.
source "$(dirname "$0")/common.sh"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
unb64url() { local s; s=$(tr -- '-_' '+/'); while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done; printf '%s' "$s" | openssl base64 -d -A; }

for alg in RS256 EdDSA; do
  export CLAUDEGATE_HOME=$SCRATCH/home-$alg
  expect_exit 0 "$CG" keygen --alg "$alg"
  kid=$OUT
  key=$CLAUDEGATE_HOME/keys/$kid.pem
  openssl pkey -in "$key" -pubout -out "$SCRATCH/pub-$alg.pem"
  token=$("$CG" issue --sub openssl)
  IFS=. read -r h p s <<<"$token"
  printf '%s' "$h.$p" > "$SCRATCH/input"
  printf '%s' "$s" | unb64url > "$SCRATCH/sig"
  if [ "$alg" = RS256 ]; then
    openssl dgst -sha256 -verify "$SCRATCH/pub-$alg.pem" -signature "$SCRATCH/sig" "$SCRATCH/input" >/dev/null \
      || fail "openssl rejected our RS256 signature"
    openssl dgst -sha256 -sign "$key" -out "$SCRATCH/sig2" "$SCRATCH/input"
  else
    openssl pkeyutl -verify -rawin -pubin -inkey "$SCRATCH/pub-$alg.pem" -sigfile "$SCRATCH/sig" \
      -in "$SCRATCH/input" >/dev/null || fail "openssl rejected our EdDSA signature"
    openssl pkeyutl -sign -rawin -inkey "$key" -in "$SCRATCH/input" -out "$SCRATCH/sig2"
  fi
  # Both RS256 and Ed25519 are deterministic: openssl's signature equals ours.
  cmp -s "$SCRATCH/sig" "$SCRATCH/sig2" || fail "$alg signatures differ between openssl and us"

  # A token whose header and claims openssl signed verifies with us.
  claims=$(printf '{"iss":"claudegate","aud":"claude-proxy","sub":"made-by-openssl","iat":%d,"exp":%d,"jti":"AAAAAAAAAAAAAAAAAAAAAA"}' \
    "$(date +%s)" "$(( $(date +%s) + 300 ))")
  h2=$(printf '{"alg":"%s","typ":"at+jwt","kid":"%s"}' "$alg" "$kid" | b64url)
  p2=$(printf '%s' "$claims" | b64url)
  printf '%s' "$h2.$p2" > "$SCRATCH/input2"
  if [ "$alg" = RS256 ]; then
    openssl dgst -sha256 -sign "$key" -out "$SCRATCH/sig3" "$SCRATCH/input2"
  else
    openssl pkeyutl -sign -rawin -inkey "$key" -in "$SCRATCH/input2" -out "$SCRATCH/sig3"
  fi
  s2=$(b64url < "$SCRATCH/sig3")
  expect_exit 0 "$CG" verify "$h2.$p2.$s2"
  expect_contains "$OUT" made-by-openssl
done
pass
