#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/ci-token: a 10-minute token on a dedicated ci plan, minted from an
# imported signing key, used with curl, expired by --at and revoked.
source "$(dirname "$0")/common.sh"
run_example ci-token
expect_output '"plan": "ci"'
expect_output "of 20000"
expect_output "was revoked"
pass
