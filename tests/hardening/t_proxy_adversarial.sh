#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# serve-local against hostile clients, byte for byte (raw_http.py): header
# smuggling, credential tricks, oversized heads and bodies, bad bodies,
# HTTP/1.0, pipelining, odd request targets and slow clients. Every refusal
# is the right status in Anthropic's envelope, nothing refused reaches the
# upstream, the upstream never sees a client credential, and the server
# keeps serving throughout.
source "$(dirname "$0")/../proxy/proxy_common.sh"
PROXY_DIR=$(cd "$(dirname "$0")/../proxy" && pwd)
HARD_DIR=$(cd "$(dirname "$0")" && pwd)

printf '[serve]\nread_timeout = "2s"\n' >"$SCRATCH/claudegate.toml"
export CLAUDEGATE_CONFIG=$SCRATCH/claudegate.toml
"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub mallory --plan free)
OTHER=$("$CG" issue --sub eve --plan free)
start_fake_upstream
ANTHROPIC_API_KEY=sk-ant-server-key start_server --upstream "$UPSTREAM_URL" --body-limit 4096
PORT=${BASE##*:}
JSON="Host: gw\r\nContent-Type: application/json\r\n"
POST="POST /v1/messages HTTP/1.1\r\n$JSON"

source "$HARD_DIR/raw_common.sh"

# --- credentials and header smuggling ---
case_reply "two Authorization headers" 401 authentication_error \
  "${POST}Authorization: Bearer $TOKEN\r\nAuthorization: Bearer $OTHER\r\nContent-Length: {CL}\r\n\r\n$MSG"
expect_contains "$RESP" "2 Authorization"
case_reply "the same Authorization twice" 401 authentication_error \
  "${POST}Authorization: Bearer $TOKEN\r\nauthorization: Bearer $TOKEN\r\nContent-Length: {CL}\r\n\r\n$MSG"
case_reply "two x-api-key headers" 401 authentication_error \
  "${POST}x-api-key: $TOKEN\r\nX-Api-Key: $OTHER\r\nContent-Length: {CL}\r\n\r\n$MSG"
case_reply "Authorization and a different x-api-key" 401 authentication_error \
  "${POST}Authorization: Bearer $TOKEN\r\nx-api-key: $OTHER\r\nContent-Length: {CL}\r\n\r\n$MSG"
expect_contains "$RESP" "different tokens"
case_reply "Authorization and the same x-api-key" 200 - \
  "${POST}Authorization: Bearer $TOKEN\r\nx-api-key: $TOKEN\r\nContent-Length: {CL}\r\n\r\n$MSG"
case_reply "lower-case bearer" 200 - \
  "${POST}Authorization: bearer $TOKEN\r\nContent-Length: {CL}\r\n\r\n$MSG"
case_reply "Bearer with extra spaces" 200 - \
  "${POST}Authorization: Bearer    $TOKEN   \r\nContent-Length: {CL}\r\n\r\n$MSG"
case_reply "Bearer<TAB>token" 401 authentication_error \
  "${POST}Authorization: Bearer\t$TOKEN\r\nContent-Length: {CL}\r\n\r\n$MSG"
case_reply "Bearer without a token" 401 authentication_error \
  "${POST}Authorization: Bearer\r\nContent-Length: {CL}\r\n\r\n$MSG"
case_reply "Bearer and blanks only" 401 authentication_error \
  "${POST}Authorization: Bearer   \r\nContent-Length: {CL}\r\n\r\n$MSG"
case_reply "Basic credentials (x-api-key beside)" 401 authentication_error \
  "${POST}Authorization: Basic bWFsbG9yeTpwdw==\r\nx-api-key: $TOKEN\r\nContent-Length: {CL}\r\n\r\n$MSG"
case_reply "token with trailing junk" 401 authentication_error \
  "${POST}Authorization: Bearer $TOKEN junk\r\nContent-Length: {CL}\r\n\r\n$MSG"
for bad in 'CR:x-note: a\rAuthorization: Bearer '"$TOKEN" \
  'bare LF:x-note: a\nAuthorization: Bearer '"$TOKEN" \
  "NUL:Authorization: Bearer $TOKEN\\x00junk" \
  "obs-fold:Authorization: Bearer\r\n $TOKEN" \
  "space before colon:Authorization : Bearer $TOKEN"; do
  case_reply "${bad%%:*} in a header" 400 invalid_request_error --wait-close \
    "${POST}${bad#*:}\r\nContent-Length: {CL}\r\n\r\n$MSG"
  expect_closed
done
# A Content-Length + Transfer-Encoding request hiding a second one in its
# body: refused, and the hidden request is never read as one.
case_reply "Content-Length with Transfer-Encoding" 400 invalid_request_error --wait-close \
  "${POST}Authorization: Bearer $TOKEN\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"
expect_replies 1
expect_closed
case_reply "two equal Content-Length" 400 invalid_request_error --wait-close \
  "${POST}Authorization: Bearer $TOKEN\r\nContent-Length: {CL}\r\nContent-Length: {CL}\r\n\r\n$MSG"
expect_closed
case_reply "two different Content-Length" 400 invalid_request_error --wait-close \
  "${POST}Authorization: Bearer $TOKEN\r\nContent-Length: {CL}\r\nContent-Length: 2\r\n\r\n$MSG"
case_reply "Transfer-Encoding: gzip, chunked" 400 invalid_request_error --wait-close \
  "${POST}Authorization: Bearer $TOKEN\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
chunk=$(printf '%x' "${#MSG}")
case_reply "a sound chunked body" 200 - \
  "${POST}Authorization: Bearer $TOKEN\r\nTransfer-Encoding: chunked\r\n\r\n$chunk\r\n$MSG\r\n0\r\n\r\n"

# --- oversized ---
LONG=$(head -c 9000 /dev/zero | tr '\0' a)
case_reply "a 9000-byte header line" 431 request_too_large --wait-close \
  "${POST}Authorization: Bearer $TOKEN\r\nx-long: $LONG\r\nContent-Length: {CL}\r\n\r\n$MSG"
expect_closed
MANY=$(for i in $(seq 150); do printf 'x-h%d: v\\r\\n' "$i"; done)
case_reply "150 header lines" 431 request_too_large \
  "${POST}Authorization: Bearer $TOKEN\r\n${MANY}Content-Length: {CL}\r\n\r\n$MSG"
head -c 5000 /dev/zero | tr '\0' ' ' >"$SCRATCH/big"
case_reply "a body above --body-limit" 413 request_too_large \
  "${POST}Authorization: Bearer $TOKEN\r\nContent-Length: 5000\r\n\r\n" "@$SCRATCH/big"
case_reply "a 9000-byte URI" 414 request_too_large "GET /v1/models?$LONG HTTP/1.1\r\nHost: gw\r\n\r\n"
head -c 70000 /dev/zero | tr '\0' a >"$SCRATCH/endless"
case_reply "a request line that never ends" 414 request_too_large "GET /" "@$SCRATCH/endless"

# --- bodies ---
body_case() { case_reply "$1" "$2" "$3" "${POST}Authorization: Bearer $TOKEN\r\nContent-Length: {CL}\r\n\r\n$4"; }
body_case "truncated JSON" 400 invalid_request_error '{"model":"claude-haiku-4-5","max_tokens":'
body_case "malformed JSON" 400 invalid_request_error '{model: claude}'
body_case "JSON that is not an object" 400 invalid_request_error '["claude-haiku-4-5"]'
body_case "no model" 400 invalid_request_error '{"max_tokens":10,"messages":[]}'
expect_contains "$RESP" "model: Field required"
body_case "no max_tokens" 400 invalid_request_error '{"model":"claude-haiku-4-5","messages":[]}'
expect_contains "$RESP" "max_tokens: Field required"
body_case "non-UTF-8 bytes in a string" 400 invalid_request_error \
  '{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"\xff\xfe"}]}'
body_case "an empty body" 400 invalid_request_error ''
case_reply "no body framing at all" 400 invalid_request_error "${POST}Authorization: Bearer $TOKEN\r\n\r\n"
# A client that stops sending mid-body (half-close) has hung up as far as
# TCP tells: no reply, nothing forwarded.
CASE="a body cut short (half-close)"
before=$(wc -l <"$RECORD")
raw --half-close "${POST}Authorization: Bearer $TOKEN\r\nContent-Length: 200\r\n\r\n{\"model\":"
expect_replies 0
expect_closed
[ "$(wc -l <"$RECORD")" = "$before" ] || fail "$CASE: reached the upstream"
echo "ok  $CASE -> closed without a reply"
# text/plain is the upstream's to judge: forwarded as sent (DESIGN.md §2: byte for byte).
case_reply "Content-Type: text/plain" 200 - \
  "POST /v1/messages HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nx-api-key: $TOKEN\r\nContent-Length: {CL}\r\n\r\n$MSG"
expect_contains "$(tail -1 "$RECORD")" '["Content-Type", "text/plain"]'

# --- protocol ---
case_reply "HTTP/1.0 without keep-alive" 200 - --wait-close "GET /healthz HTTP/1.0\r\n\r\n"
expect_closed
CASE="HTTP/1.0 with Keep-Alive (two requests, one connection)"
raw --expect 2 "GET /healthz HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /nope HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
expect_reply 0 200 -
expect_reply 1 404 not_found_error
echo "ok  $CASE -> 200, 404 not_found_error"
CASE="three pipelined requests"
# Pieces go out back to back before any reply is read ({CL} counts per piece).
raw --expect 3 "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n" "GET /nope HTTP/1.1\r\nHost: gw\r\n\r\n" \
  "${POST}x-api-key: $TOKEN\r\nContent-Length: {CL}\r\n\r\n$MSG"
expect_replies 3
expect_reply 0 200 -
expect_reply 1 404 not_found_error
expect_reply 2 200 -
[ "$(json_get "$RESP" 'd["responses"][2]["json"]["id"]')" = msg_fake ] || fail "$CASE: out of order: $RESP"
echo "ok  $CASE -> 200, 404 not_found_error, 200 (in order)"
case_reply "an unknown path" 404 not_found_error "GET /v2/whatever HTTP/1.1\r\nHost: gw\r\n\r\n"
case_reply "GET on POST /v1/messages" 404 not_found_error \
  "GET /v1/messages HTTP/1.1\r\nHost: gw\r\nx-api-key: $TOKEN\r\n\r\n"
case_reply "DELETE on /v1/messages" 404 not_found_error "DELETE /v1/messages HTTP/1.1\r\nHost: gw\r\n\r\n"
case_reply "an unknown method" 400 invalid_request_error --wait-close "BREW /v1/messages HTTP/1.1\r\nHost: gw\r\n\r\n"
expect_closed
case_reply "HTTP/2.0 in the request line" 400 invalid_request_error "GET /healthz HTTP/2.0\r\nHost: gw\r\n\r\n"
case_reply "an absolute-form target" 404 not_found_error \
  "POST http://evil.example/v1/messages HTTP/1.1\r\n${JSON}x-api-key: $TOKEN\r\nContent-Length: {CL}\r\n\r\n$MSG"
curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $TOKEN" -d "$MSG" "$BASE/v1/messages?beta=true" | grep -qx 200 ||
  fail "query string on /v1/messages"

# --- slow clients: a slowloris and a stalled body are cut off after the
# read timeout (2 s) while a slow but steady body and other clients go on ---
SLOW=$(head -c 300 /dev/zero | tr '\0' a)
for i in 1 2 3; do
  "$PY" "$HARD_DIR/raw_http.py" "$PORT" --byte-delay 0.2 --timeout 30 --wait-close \
    "GET /healthz HTTP/1.1\r\nHost: gw\r\nx-slow: $SLOW" >"$SCRATCH/loris$i" &
done
"$PY" "$HARD_DIR/raw_http.py" "$PORT" --timeout 30 --wait-close \
  "${POST}x-api-key: $TOKEN\r\nContent-Length: 200\r\n\r\n{" >"$SCRATCH/stalled" &
"$PY" "$HARD_DIR/raw_http.py" "$PORT" --slow-from 1 --byte-delay 0.03 --timeout 30 \
  "${POST}x-api-key: $TOKEN\r\nContent-Length: ${#MSG}\r\n\r\n" "$MSG" >"$SCRATCH/slowbody" &
sleep 0.5
for i in 1 2 3; do
  call "$BASE/v1/messages" -H "x-api-key: $TOKEN" -d "$MSG"
  expect_status 200
done
wait
for i in 1 2 3; do
  CASE="slowloris $i"
  RESP=$(cat "$SCRATCH/loris$i")
  expect_reply 0 408 timeout_error
  expect_closed
  [ "$(json_get "$RESP" 'd["elapsed"] < 30')" = True ] || fail "$CASE: never cut off: $RESP"
  echo "ok  $CASE -> 408 timeout_error after $(json_get "$RESP" 'd["elapsed"]') s"
done
CASE="a stalled body"
RESP=$(cat "$SCRATCH/stalled")
expect_reply 0 400 invalid_request_error
expect_closed
echo "ok  $CASE -> 400 invalid_request_error, connection closed"
CASE="a slow, steady body (longer than the read timeout in all)"
RESP=$(cat "$SCRATCH/slowbody")
expect_reply 0 200 -
echo "ok  $CASE -> 200"

# --- the upstream never saw a client credential, only the server's key ---
"$PY" - "$RECORD" "$TOKEN" "$OTHER" <<'EOF' || fail "client credentials reached the upstream"
import json, sys
record, secrets = sys.argv[1], sys.argv[2:]
lines = open(record).read().splitlines()
assert lines, "nothing reached the upstream"
for line in lines:
    headers = json.loads(line)["headers"]
    names = [k.lower() for k, _ in headers]
    assert "authorization" not in names, line
    assert [v for k, v in headers if k.lower() == "x-api-key"] == ["sk-ant-server-key"], line
    for secret in secrets + ["bWFsbG9yeTpwdw=="]:
        assert secret not in line, line
print(f"{len(lines)} upstream requests, none with a client credential")
EOF

# --- still serving ---
call "$BASE/v1/messages" -H "Authorization: Bearer $TOKEN" -d "$MSG"
expect_status 200
kill -0 "$SERVER_PID" 2>/dev/null || fail "serve-local died"
call "$BASE/metrics"
expect_contains "$BODY" 'claudegate_auth_failures_total{reason="ambiguous"} 4'
expect_contains "$BODY" 'claudegate_requests_total{status="431"}'
pass
