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
