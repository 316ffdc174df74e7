#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/api-keys: an API key minted, listed, used in x-api-key and as a
# Bearer, rotated with an overlap, revoked (401 on the next request), and no
# secret in the request log or the store.
source "$(dirname "$0")/common.sh"
run_example api-keys
expect_output "both keys work during the overlap"
expect_output "authentication_error"
expect_output "billing-svc"
expect_output "no secret in the request log or the store"
pass
