#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Refresh families: R0 → R1 → R2 rotate; presenting R0 again exits 6 and revokes
# the family, after which R2 and the family's access tokens are rejected (exit 5).
# store-backends: sqlite postgresql
source "$(dirname "$0")/common.sh"
expect_exit 0 "$CG" keygen

expect_exit 0 "$CG" issue --sub alice --plan pro --refresh --json
A0=$(json_get "$OUT" 'd["access_token"]'); R0=$(json_get "$OUT" 'd["refresh_token"]')
FID=$(json_get "$OUT" 'd["family_id"]')
[[ "$R0" =~ ^cgr_[A-Za-z0-9_-]{43}$ ]] || fail "refresh token shape: $R0"
[ "$(json_get "$OUT" 'd["refresh_expires_in"]')" = $((7 * 86400)) ] || fail "refresh ttl: $OUT"
expect_exit 0 "$CG" verify "$A0"
[ "$(json_get "$OUT" 'd["fid"]')" = "$FID" ] || fail "access token lacks fid: $OUT"

# Only the hash is stored, never the token.
if [ "$STORE_BACKEND" = sqlite ]; then
  db=$CLAUDEGATE_HOME/claudegate.db
  [ "$(mode_of "$db")" = 600 ] || fail "store mode $(mode_of "$db")"
  ! grep -qa "${R0#cgr_}" "$db" "$db-wal" 2>/dev/null || fail "refresh token stored in clear"
fi
dump=$(store_dump)
expect_contains "$dump" "$FID"
expect_not_contains "$dump" "${R0#cgr_}"

expect_exit 0 "$CG" issue --refresh-token "$R0" --json
A1=$(json_get "$OUT" 'd["access_token"]'); R1=$(json_get "$OUT" 'd["refresh_token"]')
[ "$(json_get "$OUT" 'd["family_id"]')" = "$FID" ] || fail "rotation left the family: $OUT"
[ "$R1" != "$R0" ] || fail "rotation returned the same refresh token"
expect_exit 0 "$CG" verify "$A1"
[ "$(json_get "$OUT" 'd["sub"]')" = alice ] || fail "grant lost the subject: $OUT"
[ "$(json_get "$OUT" 'd["plan"]')" = pro ] || fail "grant lost the plan: $OUT"

# Text form and stdin: access token, then refresh token.
expect_exit 0 bash -c "echo '$R1' | '$CG' issue --refresh-token -"
[ "$(echo "$OUT" | wc -l)" = 2 ] || fail "text output of a rotation: $OUT"
A2=$(echo "$OUT" | sed -n 1p); R2=$(echo "$OUT" | sed -n 2p)
expect_exit 0 "$CG" verify "$A2"

# Reuse of R0: exit 6, family revoked, everything of the family dead.
expect_exit 6 "$CG" issue --refresh-token "$R0"
expect_contains "$ERR" "reuse"
expect_exit 5 "$CG" issue --refresh-token "$R2"
for t in "$A0" "$A1" "$A2"; do
  expect_exit 5 "$CG" verify "$t"
  expect_contains "$ERR" "family"
done
expect_exit 0 "$CG" verify --no-revocation "$A2"

# A rotation takes no new claims; an unknown or malformed refresh token is invalid.
expect_exit 2 "$CG" issue --refresh-token "$R2" --sub mallory
expect_exit 3 "$CG" issue --refresh-token "cgr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
expect_exit 3 "$CG" issue --refresh-token "not-a-refresh-token"

# An expired refresh token is not reuse: exit 4, family untouched.
printf 'refresh_ttl = "1s"\n' > "$CLAUDEGATE_HOME/claudegate.toml"
expect_exit 0 "$CG" issue --sub bob --refresh --json
B0=$(json_get "$OUT" 'd["access_token"]'); S0=$(json_get "$OUT" 'd["refresh_token"]')
sleep 2
expect_exit 4 "$CG" issue --refresh-token "$S0"
expect_exit 4 "$CG" issue --refresh-token "$S0"
expect_exit 0 "$CG" verify "$B0"
pass
