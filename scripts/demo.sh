#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: the whole scheme on the built-in defaults, in a scratch home.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
cg=${BUILD_DIR:-build}/apps/claudegate/claudegate

export CLAUDEGATE_HOME=$(mktemp -d)
trap 'rm -rf "$CLAUDEGATE_HOME"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "keygen: create the signing key (RS256); prints its kid"
"$cg" keygen
step "issue: mint a 15-minute access token for alice on the pro plan"
TOKEN=$("$cg" issue --sub alice --plan pro --role dev)
echo "${TOKEN:0:60}…"
step "verify: signature, expiry, issuer, audience; prints the claims"
"$cg" verify "$TOKEN"
step "verify a tampered token: exit 3 with the reason"
set +e
"$cg" verify "${TOKEN%?}A"; echo "exit status: $?"
step "verify an expired token (as of two hours from now): exit 4"
"$cg" verify --at "$(( $(date +%s) + 7200 ))" "$TOKEN"; echo "exit status: $?"
set -e
step "jwks: the public keys, for any JWT library or gateway"
"$cg" jwks

step "issue --refresh: a CI job gets an access token and a rotating refresh token"
pair=$("$cg" issue --sub ci-nightly --plan free --refresh --json)
echo "$pair"
rt0=$(printf '%s' "$pair" | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
step "issue --refresh-token -: rotate (single use), new pair in the same family"
rt1=$(printf '%s\n' "$rt0" | "$cg" issue --refresh-token - | sed -n 2p)
echo "new refresh token: ${rt1:0:12}…"
step "presenting the used refresh token again: reuse detected, family revoked (exit 6)"
set +e
"$cg" issue --refresh-token "$rt0"; echo "exit status: $?"
"$cg" issue --refresh-token "$rt1"; echo "the newest one is dead too, exit status: $?"
set -e

step "revoke --sub: alice's tokens stop working at once (exit 5)"
"$cg" revoke --sub alice --reason "offboarded"
set +e
"$cg" verify "$TOKEN"; echo "exit status: $?"
set -e
"$cg" revoke --list

step "usage-report: empty until serve-local meters requests (next on the roadmap)"
"$cg" usage-report --by sub
