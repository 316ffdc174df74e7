#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/typescript-sdk: @anthropic-ai/sdk with baseURL + authToken against
# serve-local, messages.create and messages.stream (skips without npm/registry).
source "$(dirname "$0")/common.sh"
run_example typescript-sdk
expect_output "messages.create → msg_"
expect_output "messages.stream → msg_"
expect_output "403 permission_error"
pass
