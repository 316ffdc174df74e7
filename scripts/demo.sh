#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: the whole scheme on the built-in defaults, in a scratch home.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh demo
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
sig=${TOKEN##*.}
flipped=$([ "${sig:0:1}" = A ] && echo B || echo A)${sig:1}
"$cg" verify "${TOKEN%.*}.$flipped"; echo "exit status: $?"
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

step "usage-report: empty until serve-local meters requests (below)"
"$cg" usage-report --by sub

step "serve-local --mock-upstream: the gateway with the built-in fake Claude (no API key needed)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$cg" serve-local --mock-upstream --listen "127.0.0.1:$port" --log "$CLAUDEGATE_HOME/requests.log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$CLAUDEGATE_HOME"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
DEV=$("$cg" issue --sub dev-laptop --plan pro)
step "POST /v1/messages with the token (the JWT never leaves the gateway)"
curl -s "http://127.0.0.1:$port/v1/messages" -H "Authorization: Bearer $DEV" \
  -H "anthropic-version: 2023-06-01" -H "content-type: application/json" \
  -d '{"model":"claude-haiku-4-5","max_tokens":200,"messages":[{"role":"user","content":"Hello"}]}'
echo
step "the same, streaming: SSE events relayed as they arrive, usage read on the way"
curl -s -N "http://127.0.0.1:$port/v1/messages" -H "x-api-key: $DEV" \
  -d '{"model":"claude-haiku-4-5","max_tokens":200,"stream":true,"messages":[{"role":"user","content":"Hello"}]}' \
  | grep -E '^event: (message_start|message_delta|message_stop)'
step "a model outside the plan: 403 in Anthropic's error envelope"
curl -s "http://127.0.0.1:$port/v1/messages" -H "x-api-key: $DEV" \
  -d '{"model":"claude-opus-4-1","max_tokens":20,"messages":[]}'
echo
step "issue --api-key: a long-lived key for a service, shown once (the store keeps its hash)"
KEY_JSON=$("$cg" issue --api-key --sub billing-svc --plan pro --name billing --json)
KEY=$(printf '%s' "$KEY_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
KEY_ID=$(printf '%s' "$KEY_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "id $KEY_ID, key ${KEY:0:24}…"
step "the key in x-api-key, as the Anthropic SDKs send it"
curl -s -o /dev/null -w 'HTTP %{http_code}\n' "http://127.0.0.1:$port/v1/messages" -H "x-api-key: $KEY" \
  -d '{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"Hi"}]}'
step "POST /oauth/token: the key traded for a 15-minute access token (OAuth 2.0 client credentials)"
curl -s "http://127.0.0.1:$port/oauth/token" -u "$KEY_ID:$KEY" -d grant_type=client_credentials \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({**d, "access_token": d["access_token"][:40] + "…"}, ensure_ascii=False))'
step "revoke --api-key: refused on the next request"
"$cg" revoke --api-key "$KEY_ID" --reason "demo"
curl -s -o /dev/null -w 'HTTP %{http_code}\n' "http://127.0.0.1:$port/v1/messages" -H "x-api-key: $KEY" \
  -d '{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"Hi"}]}'
step "SIGTERM: stop accepting, drain, meter, exit"
kill -TERM "$server"; wait "$server" || true
step "usage-report: what each subject spent today"
"$cg" usage-report --by sub,model
