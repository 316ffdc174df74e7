#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# revoke --sub also stops the subject's refresh families: rotation exits 5
# (revoked, naming the subject), revoke --sub says how many families it
# stopped (text and --json), other subjects' families keep rotating, and a
# family begun after the cut-off works.
# store-backends: sqlite postgresql
source "$(dirname "$0")/common.sh"
expect_exit 0 "$CG" keygen

refresh_of() { json_get "$1" 'd["refresh_token"]'; }
expect_exit 0 "$CG" issue --sub carol --refresh --json
R1=$(refresh_of "$OUT")
expect_exit 0 "$CG" issue --sub carol --refresh --json
R2=$(refresh_of "$OUT")
expect_exit 0 "$CG" issue --sub dave --refresh --json
RD=$(refresh_of "$OUT")
# Rotate carol's first family once: the family, not the token, is what is counted.
expect_exit 0 "$CG" issue --refresh-token "$R1" --json
R1=$(refresh_of "$OUT")

expect_exit 0 "$CG" revoke --sub carol --reason offboarded
expect_contains "$OUT" "revoked subject carol"
expect_contains "$OUT" "2 refresh families stopped"

# Both of carol's families are dead; the message says why.
expect_exit 5 "$CG" issue --refresh-token "$R1"
expect_contains "$ERR" "refresh family"
expect_contains "$ERR" "subject carol was revoked at"
expect_exit 5 "$CG" issue --refresh-token - --json <<<"$R2"
[ -z "$OUT" ] || fail "a refused rotation printed on stdout: $OUT"
[ "$(json_get "$ERR" 'd["error"]["code"]')" = revoked ] || fail "json error: $ERR"
# The refused rotation spent nothing: still refused the same way, not as reuse.
expect_exit 5 "$CG" issue --refresh-token "$R1"

# dave is untouched.
expect_exit 0 "$CG" issue --refresh-token "$RD" --json

# Again: nothing left to stop, and --json carries the count.
expect_exit 0 "$CG" revoke --sub carol --json
[ "$(json_get "$OUT" 'd["revoked"]["families"]')" = 0 ] || fail "families: $OUT"
cut=$(date +%s) # the latest cut-off: this revoke's second, or an earlier one

# A family begun after the cut-off (a later second) rotates.
while [ "$(date +%s)" -le "$cut" ]; do sleep 0.1; done
expect_exit 0 "$CG" issue --sub carol --refresh --json
expect_exit 0 "$CG" issue --refresh-token "$(refresh_of "$OUT")" --json

# A later cut-off counts the new family, in --json too.
expect_exit 0 "$CG" issue --sub carol --refresh --json
expect_exit 0 "$CG" revoke --sub carol --json
[ "$(json_get "$OUT" 'd["revoked"]["families"]')" = 2 ] || fail "families after new ones: $OUT"
pass
