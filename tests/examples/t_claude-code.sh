#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/claude-code: the apiKeyHelper run twice (each token verifies, the
# refresh token file rotates), the spent refresh token's reuse exits 6.
source "$(dirname "$0")/common.sh"
run_example claude-code
expect_output "2nd run: access token"
expect_output "refresh token reuse detected"
expect_output "mode 644"
pass
