#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# __complete's dynamic values: plan names from the config, subjects and
# models from the store's usage ledger, read from the home the completed
# command line names (--home), never creating a store to find none.
source "$(dirname "$0")/../proxy/proxy_common.sh"

# The candidate values of completing "claudegate $*".
values() { "$CG" __complete -- "$@" | tail -n +2 | cut -f1 | sort | tr '\n' ' '; }

[ "$(values issue --plan "")" = "admin free pro " ] || fail "built-in plans: $(values issue --plan "")"
printf '[plans.team]\nmodels = ["claude-*"]\n' >"$SCRATCH/team.toml"
[ "$(values --config "$SCRATCH/team.toml" issue --plan "")" = "admin free pro team " ] \
  || fail "plans of --config: $(values --config "$SCRATCH/team.toml" issue --plan "")"
[ "$(values issue --plan t --config "$SCRATCH/team.toml" --plan t)" = "team " ] || fail "prefix t"

# No store yet: no subjects, and completing does not create one.
[ -z "$(values revoke --sub "")" ] || fail "subjects without a store"
[ ! -e "$CLAUDEGATE_HOME/claudegate.db" ] || fail "completion created a store"

# Meter two subjects through the mock gateway.
expect_exit 0 "$CG" keygen
start_server --mock-upstream
for sub in alice bob; do
  call -X POST "$BASE/v1/messages" -H "Authorization: Bearer $("$CG" issue --sub "$sub")" \
    -H 'content-type: application/json' -d "$MSG"
  expect_status 200
done
stop_server

[ "$(values revoke --sub "")" = "alice bob " ] || fail "subjects: $(values revoke --sub "")"
[ "$(values usage-report --sub a)" = "alice " ] || fail "subjects with prefix a"
[ "$(values usage-report --model "")" = "claude-haiku-4-5 " ] || fail "models: $(values usage-report --model "")"
# The completed line's own --home wins over CLAUDEGATE_HOME.
[ -z "$(values --home "$SCRATCH/other" revoke --sub "")" ] || fail "--home of the line ignored"
[ ! -e "$SCRATCH/other" ] || fail "completion created the other home"
pass
