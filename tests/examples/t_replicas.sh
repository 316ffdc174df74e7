#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/replicas: three serve-local on one PostgreSQL (the example starts
# its own cluster): a quota shared by all, a revocation seen by all.
source "$(dirname "$0")/common.sh"
if [ -n "${CI:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  fail "PostgreSQL's server is not installed, and with CI set examples/replicas must run (scripts/install-deps.sh test)"
fi
chmod 711 "$SCRATCH" # the example's cluster lives under it, run by the postgres user
run_example replicas
expect_output "CLAUDEGATE_DB=postgresql://claudegate:***@127.0.0.1:"
expect_output "the last three requests, one per replica, were refused"
expect_output "eli: HTTP 200 from each replica"
expect_output "HTTP 401 authentication_error"
expect_output "dana: "
pass
