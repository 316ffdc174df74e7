#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/config-plans: the example claudegate.toml loads; a model allowed on
# one plan is refused (403) on the other; plan limits and [serve] apply.
source "$(dirname "$0")/common.sh"
run_example config-plans
expect_output "research: HTTP 200 (daily limit 2000000)"
expect_output "not allowed on plan support"
expect_output "HTTP 413 request_too_large"
# The shipped file is valid on its own: issue reads it and knows both plans.
cfg=$CLAUDEGATE_SOURCE_DIR/examples/config-plans/claudegate.toml
"$CLAUDEGATE_BIN" --home "$SCRATCH/home" keygen >/dev/null
for plan in support research; do
  out=$("$CLAUDEGATE_BIN" --home "$SCRATCH/home" --config "$cfg" issue --sub t --plan "$plan" 2>&1) ||
    fail "examples/config-plans/claudegate.toml does not load: $out"
done
pass
