#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# verify --batch: one JSON result per input line, in order; exit of the first failure.
source "$(dirname "$0")/common.sh"
expect_exit 0 "$CG" keygen
good1=$("$CG" issue --sub one)
good2=$("$CG" issue --sub two)
short=$("$CG" issue --sub three --ttl 90s)

printf '%s\n%s\n' "$good1" "$good2" > "$SCRATCH/good"
expect_exit 0 bash -c "'$CG' verify --batch < '$SCRATCH/good'"
[ "$(echo "$OUT" | wc -l)" = 2 ] || fail "want 2 lines: $OUT"
[ "$(json_get "$(echo "$OUT" | sed -n 2p)" 'd["claims"]["sub"]')" = two ] || fail "order: $OUT"

printf '%s\nnot-a-token\n%s\n\n%s\n' "$good1" "$short" "$good2" > "$SCRATCH/mixed"
expect_exit 3 bash -c "'$CG' verify --batch < '$SCRATCH/mixed'"
[ "$(echo "$OUT" | wc -l)" = 5 ] || fail "want 5 lines: $OUT"
line() { echo "$OUT" | sed -n "$1p"; }
[ "$(json_get "$(line 1)" 'd["valid"]')" = True ] || fail "line 1: $OUT"
[ "$(json_get "$(line 2)" 'd["code"]')" = malformed ] || fail "line 2: $OUT"
[ "$(json_get "$(line 3)" 'd["valid"]')" = True ] || fail "line 3: $OUT"
[ "$(json_get "$(line 4)" 'd["valid"]')" = False ] || fail "empty line 4: $OUT"
[ "$(json_get "$(line 5)" 'd["claims"]["sub"]')" = two ] || fail "line 5: $OUT"

# As of ten minutes later only the 90-second token has expired: exit 4.
printf '%s\n%s\n%s\n' "$good1" "$short" "$good2" > "$SCRATCH/later"
expect_exit 4 bash -c "'$CG' verify --batch --at $(( $(date +%s) + 600 )) < '$SCRATCH/later'"
[ "$(json_get "$(echo "$OUT" | sed -n 2p)" 'd["code"]')" = expired ] || fail "line 2 later: $OUT"

# 5 000 lines of ~1 KB span two 4 MiB input chunks, each verified on every
# core in contiguous shares: the results come out in input order, one per
# line, with the exit status of the first failure (line 2, malformed).
"$PY" - "$good1" "$good2" >"$SCRATCH/many" <<'PY'
import sys
for i in range(5000):
    print(sys.argv[1] if i % 500 == 0 else sys.argv[2] if i % 500 == 250 else "x" * 1000 + str(i))
PY
valid_lines() { echo "$OUT" | grep -n '"valid":true' | cut -d: -f1 | tr '\n' ' '; }
expect_exit 3 bash -c "'$CG' verify --batch < '$SCRATCH/many'"
[ "$(echo "$OUT" | wc -l)" = 5000 ] || fail "want 5000 lines, got $(echo "$OUT" | wc -l)"
want=$(seq 1 250 5000 | tr '\n' ' ')
[ "$(valid_lines)" = "$want" ] || fail "valid lines out of order: $(valid_lines)"
[ "$(json_get "$(line 4751)" 'd["claims"]["sub"]')" = two ] || fail "line 4751: $(line 4751)"
[ "$(json_get "$(line 5000)" 'd["code"]')" = malformed ] || fail "line 5000: $(line 5000)"

# With revocation on, every thread checks its share against the store.
expect_exit 0 "$CG" revoke --token "$good2"
expect_exit 3 bash -c "'$CG' verify --batch < '$SCRATCH/many'"
[ "$(valid_lines)" = "$(seq 1 500 5000 | tr '\n' ' ')" ] || fail "valid lines after revoke: $(valid_lines)"
[ "$(echo "$OUT" | grep -c '"code":"revoked"')" = 10 ] || fail "want 10 revoked lines"
[ "$(json_get "$(line 4751)" 'd["code"]')" = revoked ] || fail "line 4751 after revoke: $(line 4751)"
pass
