#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/claude-code: the apiKeyHelper run twice (each token verifies, the
# refresh token file rotates), the spent refresh token's reuse exits 6; when
# the helper cannot rotate it says why on stderr (the revoked family, locally
# and through the gateway; revoke --sub of its subject); Claude Code's
# default opus model needs ANTHROPIC_MODEL on plan pro.
source "$(dirname "$0")/common.sh"
run_example claude-code
expect_output "2nd run: access token"
expect_output "refresh token reuse detected"
expect_output "without ANTHROPIC_MODEL (claude-opus-4-5): HTTP 403"
expect_output "the helper fails (exit 1): claudegate-key-helper: could not rotate the refresh token in"
expect_output "/refresh-token: refresh family"
expect_output "1 refresh family stopped"
expect_output "subject bob was revoked"
expect_output "mode 644"
pass
