#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/curl: plain and streamed Messages calls, count_tokens, /v1/models and
# the quota headers, through serve-local with the mock Claude.
source "$(dirname "$0")/common.sh"
run_example curl
expect_output "x-claudegate-quota-remaining:"
expect_output "event: message_stop"
expect_output '{"input_tokens":'
expect_output "permission_error"
pass
