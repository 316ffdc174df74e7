#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A correctly signed token whose header or payload JSON starts with a UTF-8
# byte order mark is malformed (exit 3), as PyJWT, panva/jose and Go say;
# the same token without it verifies. Signed with openssl, not with us.
source "$(dirname "$0")/common.sh"
command -v openssl >/dev/null || { echo "SKIP: openssl missing"; exit 77; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
expect_exit 0 "$CG" keygen --alg RS256
kid=$OUT
key=$CLAUDEGATE_HOME/keys/$kid.pem

# Sign header JSON $1 and claims JSON $2 (printf formats, so \357\273\277 is the BOM).
# shellcheck disable=SC2059 # the arguments are printf formats on purpose
signed() {
  local h p
  h=$(printf "$1" | b64url)
  p=$(printf "$2" | b64url)
  printf '%s' "$h.$p" >"$SCRATCH/input"
  openssl dgst -sha256 -sign "$key" -out "$SCRATCH/sig" "$SCRATCH/input"
  printf '%s.%s.%s' "$h" "$p" "$(b64url <"$SCRATCH/sig")"
}
now=$(date +%s)
header='{"alg":"RS256","typ":"at+jwt","kid":"'"$kid"'"}'
claims='{"iss":"claudegate","aud":"claude-proxy","sub":"bom","iat":'"$now"',"exp":'"$((now + 300))"',"jti":"AAAAAAAAAAAAAAAAAAAAAA"}'
bom='\357\273\277'

expect_exit 0 "$CG" verify "$(signed "$header" "$claims")"
expect_exit 3 "$CG" verify "$(signed "$bom$header" "$claims")"
expect_contains "$ERR" "byte order mark"
expect_exit 3 "$CG" verify "$(signed "$header" "$bom$claims")"
expect_contains "$ERR" "byte order mark"
expect_exit 3 "$CG" verify --json "$(signed "$header" "$bom$claims")"
[ "$(json_get "$OUT" 'd["code"]')" = malformed ] || fail "json verdict: $OUT"
pass
