#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# With --json, a failing command writes its JSON error object (with its
# stable "code") to stderr and nothing to stdout: a caller that captures
# stdout (an apiKeyHelper, $(…)) still shows why. Data stays on stdout, and
# verify's verdict (valid or not) is data.
source "$(dirname "$0")/common.sh"

# Run "$@" (a --json command), require exit $1, an empty stdout and error code $2 on stderr.
expect_json_error() {
  local want_exit=$1 want_code=$2
  shift 2
  expect_exit "$want_exit" "$@"
  [ -z "$OUT" ] || fail "error on stdout from: $*
stdout: $OUT"
  [ "$(json_get "$ERR" 'd["error"]["code"]')" = "$want_code" ] || fail "stderr is not the JSON error: $ERR"
  [ -n "$(json_get "$ERR" 'd["error"]["message"]')" ] || fail "no message: $ERR"
}

# No keys yet: issue cannot sign.
expect_json_error 2 config "$CG" issue --sub alice --json
expect_exit 0 "$CG" keygen
expect_json_error 2 config "$CG" issue --sub alice --plan nope --json
expect_json_error 3 malformed "$CG" issue --refresh-token not-a-refresh-token --json
expect_json_error 3 claim_mismatch "$CG" issue --refresh-token "cgr_$(printf 'A%.0s' $(seq 43))" --json
expect_json_error 2 config "$CG" revoke --json
expect_json_error 3 claim_mismatch "$CG" revoke --family nope --json
CLAUDEGATE_HOME=$SCRATCH/empty expect_json_error 2 config "$CG" verify --json "a.b.c"

# Data stays on stdout, errors stay off it.
expect_exit 0 "$CG" issue --sub alice --json
[ "$(json_get "$OUT" 'd["token_type"]')" = Bearer ] || fail "issue --json: $OUT"
[ -z "$ERR" ] || fail "stderr on success: $ERR"
# verify --json: the verdict is the answer, on stdout even when the token is refused.
expect_exit 3 "$CG" verify --json "a.b"
[ "$(json_get "$OUT" 'd["valid"]')" = False ] || fail "verify --json verdict: $OUT"
pass
