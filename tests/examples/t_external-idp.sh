#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/external-idp: RS256 tokens from a fake IdP, verified from its JWKS
# URL by claudegate verify and accepted by serve-local --jwks.
source "$(dirname "$0")/common.sh"
run_example external-idp
expect_output '"sub": "alice@example.com"'
expect_output "IdP token (alice@example.com, plan free by default): HTTP 200"
expect_output "expired (exit 4)"
pass
