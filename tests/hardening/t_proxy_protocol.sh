#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# serve-local's HTTP/1.1 details, byte for byte (raw_http.py) and with curl:
# HEAD is answered as GET without a body (and metered as such); only an
# allowlist of client headers goes upstream and the upstream's Server header
# does not come back; a body the upstream encoded keeps its Content-Encoding
# and is never compressed again or sliced by Range; Expect: 100-continue gets
# 413/401 instead of 100 when the request would be refused; a path that is not
# canonical (the router decodes it, the upstream gets it raw) is a 400; a
# chunked body that breaks RFC 9112's framing is a 400 and ends the connection;
# a compressed request body is a 415.
source "$(dirname "$0")/../proxy/proxy_common.sh"
PROXY_DIR=$(cd "$(dirname "$0")/../proxy" && pwd)
HARD_DIR=$(cd "$(dirname "$0")" && pwd)

printf '[serve]\nread_timeout = "2s"\n' >"$SCRATCH/claudegate.toml"
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub mallory --plan pro)
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL" --body-limit 4096
PORT=${BASE##*:}
POST="POST /v1/messages HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"

source "$HARD_DIR/raw_common.sh"

# --- HEAD on GET routes: the GET's status and headers, no body, metered ---
CASE="HEAD /v1/models"
call "$BASE/v1/models" -H "x-api-key: $TOKEN"
expect_status 200
get_length=$(header content-length)
call -I "$BASE/v1/models" -H "x-api-key: $TOKEN"
expect_status 200
[ "$(header content-length)" = "$get_length" ] || fail "$CASE: Content-Length differs from GET's ($get_length): $HEADERS"
[ "$(header request-id)" = req_upstream_123 ] || fail "$CASE: not the upstream's answer: $HEADERS"
[ "$(json_get "$(tail -1 "$RECORD")" 'd["method"]')" = GET ] || fail "$CASE: upstream got $(tail -1 "$RECORD")"
echo "ok  $CASE -> 200, Content-Length $get_length"
CASE="HEAD /v1/models without a token"
call -I "$BASE/v1/models"
expect_status 401
[ "$(header www-authenticate)" = 'Bearer error="invalid_token"' ] || fail "$CASE: $HEADERS"
echo "ok  $CASE -> 401"
call -I "$BASE/v1/models/claude-haiku-4-5" -H "x-api-key: $TOKEN"
expect_status 200
call -I "$BASE/healthz"
expect_status 200
call "$BASE/metrics"
expect_not_contains "$BODY" 'claudegate_requests_total{status="0"}'
echo "ok  HEAD /v1/models/ID, /healthz -> 200; no request metered with status 0"

# --- forwarding: an allowlist of client headers up, no Server down ---
CASE="forwarded headers"
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -H "Cookie: session=secret-cookie" \
  -H "Origin: https://evil.example" -H "X-Forwarded-For: 10.6.6.6" -H "Forwarded: for=10.6.6.6" \
  -H "X-Real-IP: 10.6.6.6" -H "Referer: https://evil.example/page" -H "x-custom: nope" \
  -H "anthropic-version: 2023-06-01" -H "anthropic-beta: b1" -H "anthropic-dangerous-direct-browser-access: true" \
  -H "x-stainless-lang: js" -H "User-Agent: claude-cli/2.1" -H "Accept: application/json" \
  -H "content-type: application/json" -d "$MSG"
expect_status 200
"$PY" - "$(tail -1 "$RECORD")" <<'EOF' || fail "$CASE: $(tail -1 "$RECORD")"
import json, sys
h = {k.lower(): v for k, v in json.loads(sys.argv[1])["headers"]}
for name in ("cookie", "origin", "x-forwarded-for", "forwarded", "x-real-ip", "referer", "x-custom"):
    assert name not in h, name
want = {"anthropic-version": "2023-06-01", "anthropic-beta": "b1", "x-stainless-lang": "js",
        "anthropic-dangerous-direct-browser-access": "true", "user-agent": "claude-cli/2.1",
        "accept": "application/json", "content-type": "application/json", "x-api-key": "sk-ant-server-key"}
for name, value in want.items():
    assert h.get(name) == value, (name, h.get(name))
EOF
echo "ok  $CASE -> allowlist only"
CASE="the upstream's Server header"
[ -z "$(header server)" ] || fail "$CASE relayed: $HEADERS"
echo "ok  $CASE -> not relayed"

# --- a gzip body from the upstream: Content-Encoding kept, compressed once ---
for accept in "" "gzip, br"; do
  CASE="a gzip reply (client Accept-Encoding: '${accept}')"
  curl -s --max-time 20 -o "$SCRATCH/gz" -D "$SCRATCH/gzh" -H "Accept-Encoding: $accept" \
    -H "x-api-key: $TOKEN" -H "anthropic-fake-gzip: 1" "$BASE/v1/messages" -d "$MSG"
  [ "$(grep -ci '^content-encoding:' "$SCRATCH/gzh")" = 1 ] || fail "$CASE: $(cat "$SCRATCH/gzh")"
  grep -qi '^content-encoding: gzip' "$SCRATCH/gzh" || fail "$CASE: $(cat "$SCRATCH/gzh")"
  "$PY" -c 'import gzip, json, sys; assert json.loads(gzip.decompress(open(sys.argv[1], "rb").read()))["id"] == "msg_fake"' \
    "$SCRATCH/gz" || fail "$CASE: the body is not the upstream's gzip of its JSON"
  echo "ok  $CASE -> Content-Encoding: gzip, the upstream's bytes"
done
CASE="Range on a relayed body"
call "$BASE/v1/models" -H "x-api-key: $TOKEN" -H "Range: bytes=0-9"
expect_status 200
[ "$(header content-length)" = "$get_length" ] || fail "$CASE: sliced: $HEADERS"
echo "ok  $CASE -> ignored, 200 with the whole body"

# --- a compressed request body: inflating it is unbounded before
# authentication (300 KB of gzip took 500 MB), so it is refused unread ---
"$PY" -c 'import gzip, sys; sys.stdout.buffer.write(gzip.compress(b" " * 3000000))' >"$SCRATCH/bomb.gz"
case_reply "a gzip request body" 415 invalid_request_error --wait-close \
  "${POST}Content-Encoding: gzip\r\nContent-Length: $(wc -c <"$SCRATCH/bomb.gz")\r\n\r\n" "@$SCRATCH/bomb.gz"
expect_closed

# --- Expect: 100-continue: refused before 100 when the request would be ---
EXPECT="Expect: 100-continue\r\n"
case_reply "Expect with a Content-Length above --body-limit" 413 request_too_large --wait-close \
  "${POST}x-api-key: $TOKEN\r\n${EXPECT}Content-Length: 5000\r\n\r\n"
expect_replies 1
expect_closed
case_reply "Expect without a credential" 401 authentication_error --wait-close \
  "${POST}${EXPECT}Content-Length: {CL}\r\n\r\n"
expect_replies 1
expect_closed
case_reply "Expect on an admin route without its role" 403 permission_error --wait-close \
  "POST /admin/revoke HTTP/1.1\r\nHost: gw\r\nx-api-key: $TOKEN\r\n${EXPECT}Content-Length: {CL}\r\n\r\n"
expect_replies 1
expect_closed
# The body a client sends anyway is never read as a request of its own.
case_reply "Expect with a bad token, body sent anyway" 401 authentication_error --wait-close \
  "${POST}x-api-key: not.a.jwt\r\n${EXPECT}Content-Length: {CL}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"
expect_replies 1
expect_closed
case_reply "Expect with a valid token and a sound body" 100 - --expect 2 --piece-delay 0.2 \
  "${POST}x-api-key: $TOKEN\r\n${EXPECT}Content-Length: ${#MSG}\r\n\r\n" "$MSG"
expect_reply 1 200 -

# --- request targets: routed path == forwarded path, or 400 ---
for target in "/v1/messages%2Fcount_tokens" "/v1/messages%2fcount_tokens" "/v1/messages%5Ccount_tokens" \
  "/v1//messages" "/v1/./messages" "/v1/models/../messages" "/v1/%2e%2e/v1/messages" "/v1/%6Dessages"; do
  case_reply "target $target" 400 invalid_request_error --wait-close \
    "POST $target HTTP/1.1\r\nHost: gw\r\nx-api-key: $TOKEN\r\nContent-Length: {CL}\r\n\r\n$MSG"
  expect_contains "$RESP" "not canonical"
done
case_reply "target /v1/messages?beta=true" 200 - \
  "POST /v1/messages?beta=true HTTP/1.1\r\nHost: gw\r\nx-api-key: $TOKEN\r\nContent-Length: {CL}\r\n\r\n$MSG"

# --- chunked request bodies: RFC 9112 §7.1 to the letter ---
chunk=$(printf '%x' "${#MSG}")
CHUNKED="${POST}x-api-key: $TOKEN\r\nTransfer-Encoding: chunked\r\n"
bad_chunked() {
  case_reply "$1" 400 invalid_request_error --wait-close "${CHUNKED}\r\n$2"
  expect_contains "$RESP" "chunked"
  expect_replies 1
  expect_closed
}
bad_chunked "chunk data not followed by CRLF" "$chunk\r\n${MSG}0\r\n\r\n"
bad_chunked "chunk data followed by junk, then a request" \
  "$chunk\r\n${MSG}XX\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"
bad_chunked "a chunk size line ended by a bare LF" "$chunk\n$MSG\r\n0\r\n\r\n"
bad_chunked "chunk data followed by a bare LF" "$chunk\r\n$MSG\n0\r\n\r\n"
bad_chunked "a last chunk ended by bare LFs" "$chunk\r\n$MSG\r\n0\n\n"
bad_chunked "a chunk size with 0x" "0x$chunk\r\n$MSG\r\n0\r\n\r\n"
head -c 2500 /dev/zero | tr '\0' ' ' >"$SCRATCH/half"
case_reply "a chunked body above --body-limit" 413 request_too_large --wait-close \
  "${CHUNKED}\r\n9c4\r\n" "@$SCRATCH/half" "\r\n9c4\r\n" "@$SCRATCH/half" "\r\n0\r\n\r\n"
expect_closed
CASE="a sound chunked body with extensions and trailers, then a pipelined request"
before=$(wc -l <"$RECORD")
split=$((${#MSG} / 2))
raw --expect 2 "${CHUNKED}\r\n$(printf '%x' "$split");ext=\"v\"\r\n${MSG:0:$split}\r\n$(printf '%x' $((${#MSG} - split)))\r\n${MSG:$split}\r\n0\r\nx-trailer: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"
expect_reply 0 200 -
expect_reply 1 200 -
[ "$(wc -l <"$RECORD")" = $((before + 1)) ] || fail "$CASE: not forwarded once"
[ "$(json_get "$(tail -1 "$RECORD")" 'd["body"]')" = "$MSG" ] || fail "$CASE: forwarded $(tail -1 "$RECORD")"
echo "ok  $CASE -> 200 (body forwarded whole), 200"
case_reply "chunked with Expect and no credential" 401 authentication_error --wait-close \
  "${POST}Transfer-Encoding: chunked\r\n${EXPECT}\r\n"
expect_replies 1
case_reply "chunked with Expect and a valid token" 100 - --expect 2 --piece-delay 0.2 \
  "${CHUNKED}${EXPECT}\r\n" "$chunk\r\n$MSG\r\n0\r\n\r\n"
expect_reply 1 200 -

# --- still serving, every request metered with its real status ---
call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
expect_status 200
call "$BASE/metrics"
expect_not_contains "$BODY" 'claudegate_requests_total{status="0"}'
expect_contains "$BODY" 'claudegate_requests_total{status="413"}'
pass
