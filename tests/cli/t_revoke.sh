#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# revoke --jti/--token/--sub/--family/--refresh-token make verify exit 5;
# idempotent; --list; --prune removes only rows expired past the leeway.
# store-backends: sqlite postgresql
source "$(dirname "$0")/common.sh"
expect_exit 0 "$CG" keygen
printf 'leeway = "0s"\n' > "$CLAUDEGATE_HOME/claudegate.toml"
db=$CLAUDEGATE_HOME/claudegate.db

T1=$("$CG" issue --sub alice)
J1=$(json_get "$("$CG" verify --json "$T1")" 'd["claims"]["jti"]')
# A token with a bad signature never touches the store: no store file appears.
expect_exit 3 "$CG" verify "${T1%.*}.AAAA"
[ "$STORE_BACKEND" != sqlite ] || [ ! -e "$db" ] || fail "a bad-signature verify created the store"

expect_exit 0 "$CG" revoke --jti "$J1" --reason "laptop stolen"
expect_exit 0 "$CG" revoke --jti "$J1"
expect_exit 5 "$CG" verify "$T1"
expect_contains "$ERR" "$J1"
expect_contains "$ERR" "laptop stolen"
expect_exit 5 "$CG" verify --json "$T1"
[ "$(json_get "$OUT" 'd["code"]')" = revoked ] || fail "json code: $OUT"

T2=$("$CG" issue --sub bob)
expect_exit 0 bash -c "echo '$T2' | '$CG' revoke --token -"
expect_exit 5 "$CG" verify "$T2"

T3=$("$CG" issue --sub carol)
T3b=$("$CG" issue --sub carol)
T4=$("$CG" issue --sub dave)
expect_exit 0 "$CG" revoke --sub carol --reason offboarded
expect_exit 5 "$CG" verify "$T3"
expect_exit 5 "$CG" verify "$T3b"
expect_exit 0 "$CG" verify "$T4"
sleep 1.1   # the cut-off covers the revoking second itself
T3c=$("$CG" issue --sub carol)
expect_exit 0 "$CG" verify "$T3c"

out=$("$CG" issue --sub erin --refresh --json)
E0=$(json_get "$out" 'd["access_token"]'); ER=$(json_get "$out" 'd["refresh_token"]')
expect_exit 0 "$CG" revoke --refresh-token "$ER"
expect_exit 5 "$CG" verify "$E0"
expect_exit 5 "$CG" issue --refresh-token "$ER"
out=$("$CG" issue --sub frank --refresh --json)
F0=$(json_get "$out" 'd["access_token"]'); FID=$(json_get "$out" 'd["family_id"]')
expect_exit 0 "$CG" revoke --family "$FID"
expect_exit 0 "$CG" revoke --family "$FID"
expect_exit 5 "$CG" verify "$F0"
expect_exit 3 "$CG" revoke --refresh-token "cgr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

expect_exit 2 "$CG" revoke
expect_exit 2 "$CG" revoke --jti a --sub b
expect_exit 3 "$CG" revoke --token "not.a.token"

# --list shows each kind; --prune drops only deny-list rows whose tokens expired.
expect_exit 0 "$CG" revoke --list --json
kinds=$(json_get "$OUT" 'sorted(set(r["kind"] for r in d["revocations"]))')
[ "$kinds" = "['family', 'jti', 'subject']" ] || fail "list kinds: $kinds"
expect_exit 0 "$CG" revoke --list
expect_contains "$OUT" "offboarded"

S=$("$CG" issue --sub short --ttl 1s)
expect_exit 0 "$CG" revoke --token "$S"
SJ=$(json_get "$("$CG" inspect --json "$S" 2>/dev/null)" 'd["claims"]["jti"]')
sleep 2
expect_exit 0 "$CG" revoke --prune --json
[ "$(json_get "$OUT" 'd["pruned"]')" = 1 ] || fail "prune: $OUT"
expect_exit 0 "$CG" revoke --list --json
expect_not_contains "$OUT" "$SJ"
expect_contains "$OUT" "$J1"   # no expiry known for a bare --jti: kept
expect_exit 0 "$CG" revoke --prune --json
[ "$(json_get "$OUT" 'd["pruned"]')" = 0 ] || fail "second prune: $OUT"
pass
