#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A private key readable by group or others is refused, like ssh does.
source "$(dirname "$0")/common.sh"
expect_exit 0 "$CG" keygen
kid=$OUT
chmod 644 "$CLAUDEGATE_HOME/keys/$kid.pem"
expect_exit 1 "$CG" issue --sub alice
expect_contains "$ERR" "chmod 600"
expect_not_contains "$ERR" "PRIVATE KEY"
chmod 600 "$CLAUDEGATE_HOME/keys/$kid.pem"
expect_exit 0 "$CG" issue --sub alice
pass
