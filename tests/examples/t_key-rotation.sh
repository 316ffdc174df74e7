#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/key-rotation: keygen --rotate under a running serve-local; tokens of
# both keys accepted without restart, both kids in the JWKS.
source "$(dirname "$0")/common.sh"
run_example key-rotation
expect_output "token B (key 2): HTTP 200"
expect_output "token A (key 1): HTTP 200"
expect_output "published"
pass
