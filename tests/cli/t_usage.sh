#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Usage errors exit 2 with our diagnostic; --help and --version exit 0.
source "$(dirname "$0")/common.sh"

expect_exit 0 "$CG" --help
main_help=$OUT
for cmd in keygen issue verify jwks inspect; do
  expect_contains "$main_help" "$cmd"
  expect_exit 0 "$CG" "$cmd" --help
  expect_contains "$OUT" "--"
done
expect_exit 0 "$CG" --version
expect_contains "$OUT" "."

expect_exit 2 "$CG"
expect_contains "$ERR" "claudegate: error:"
expect_exit 2 "$CG" frobnicate
expect_exit 2 "$CG" issue --no-such-flag
expect_contains "$ERR" "claudegate: error:"
expect_exit 2 "$CG" issue            # --sub is required
expect_contains "$ERR" "sub"
expect_exit 2 "$CG" keygen --alg none
expect_exit 2 "$CG" keygen --alg rs256   # algorithm names are case-sensitive
expect_exit 2 "$CG" keygen --bits 1024
expect_exit 2 "$CG" issue --sub a --ttl 15x
expect_contains "$ERR" "15x"
expect_exit 2 "$CG" verify --at yesterday x
pass
