#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/client-credentials: an API key traded for access tokens at
# /oauth/token, a shell cache that renews near expiry, the SDK's token provider.
source "$(dirname "$0")/common.sh"
run_example client-credentials
expect_output "call 2: HTTP 200"
expect_output "invalid_client"
expect_output "reporting-svc"
case "$OUT" in
  *"skipped: the SDK part"*) ;;
  *) expect_output "one token served both calls" ;;
esac
pass
