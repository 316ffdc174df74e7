#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Anthropic TypeScript SDK pointed at serve-local (baseURL + authToken):
# messages.create and messages.stream. Installs the pinned SDK into this
# folder's node_modules/; skips (exit 77) when node, npm or the registry is missing.
source "$(dirname "$0")/../lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

command -v node >/dev/null || skip "node is not installed (the example needs Node.js 20 or later)"
command -v npm >/dev/null || skip "npm is not installed"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  skip "node $(node --version) is too old; the example needs Node.js 20 or later"

step "npm install (the SDK version pinned in package.json) into $HERE/node_modules"
if ! (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error); then
  if ! timeout 20 npm ping --loglevel=error >/dev/null 2>&1; then
    skip "the npm registry ($(npm config get registry 2>/dev/null)) is unreachable; cannot install @anthropic-ai/sdk"
  fi
  fail "npm install failed although the registry answers (see above)"
fi
echo "@anthropic-ai/sdk $(node -p 'require(process.argv[1]).version' "$HERE/node_modules/@anthropic-ai/sdk/package.json")"

step "the gateway and a token for the app"
"$CG" keygen
start_gateway
CLAUDEGATE_TOKEN=$("$CG" issue --sub ts-app --plan pro)
export CLAUDEGATE_URL=$GATEWAY CLAUDEGATE_TOKEN

step "node index.mjs"
# A real ANTHROPIC_API_KEY in your environment is neither needed nor sent.
(cd "$HERE" && env -u ANTHROPIC_API_KEY -u ANTHROPIC_AUTH_TOKEN -u ANTHROPIC_BASE_URL node index.mjs)

step "the gateway metered both SDK calls for ts-app"
stop_gateway
"$CG" usage-report --sub ts-app --by sub
report=$("$CG" usage-report --sub ts-app --format json)
[ "$(json_get "$report" 'd["totals"]["requests"]')" = 2 ] || fail "expected 2 metered requests: $report"
streamed=$(python3 -c 'import json,sys; print(sum(json.loads(l).get("stream") is True for l in open(sys.argv[1])))' "$GATEWAY_LOG")
[ "$streamed" = 1 ] || fail "expected one streamed request in the request log, got $streamed: $(cat "$GATEWAY_LOG")"

echo
echo "typescript-sdk example: all checks passed"
