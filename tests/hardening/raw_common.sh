# SPDX-License-Identifier: Apache-2.0
# Byte-for-byte request helpers for the hardening tests that talk to
# serve-local through raw_http.py (sourced after proxy_common.sh, once
# $PORT and $RECORD are set).
HARD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Send raw_http.py arguments "$@" on one connection; the JSON result in $RESP.
raw() { RESP=$("$PY" "$HARD_DIR/raw_http.py" "$PORT" "$@") || fail "$CASE: raw_http.py failed"; }

# Require reply $1 (0-based) of the last exchange to be HTTP $2, in Anthropic's
# envelope of error type $3 ("-": no envelope expected).
expect_reply() {
  "$PY" - "$RESP" "$@" <<'PYEOF' || fail "$CASE: $(echo "$RESP" | cut -c1-900)"
import json, sys
d = json.loads(sys.argv[1])
index, status, kind = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
r = d["responses"][index]
assert r["status"] == status, f"HTTP {r['status']}, wanted {status}"
if kind != "-":
    e = r["json"]
    assert e["type"] == "error" and e["error"]["type"] == kind and e["error"]["message"], e
    assert e["request_id"].startswith("req_"), e
PYEOF
}

# Require the last exchange to have had exactly $1 replies.
expect_replies() {
  [ "$(json_get "$RESP" 'len(d["responses"])')" = "$1" ] || fail "$CASE: not $1 replies: $RESP"
}

# Require the server to have closed the connection after its reply.
expect_closed() {
  [ "$(json_get "$RESP" 'd["closed"]')" = True ] || fail "$CASE: connection left open: $RESP"
}

# Run case "$1": raw arguments "${@:4}", first reply HTTP $2 / envelope $3,
# and (unless $2 is 200 or 100) nothing new upstream.
case_reply() {
  CASE=$1
  local status=$2 kind=$3 before
  shift 3
  before=$(wc -l <"$RECORD")
  raw "$@"
  expect_reply 0 "$status" "$kind"
  if [ "$status" != 200 ] && [ "$status" != 100 ] && [ "$(wc -l <"$RECORD")" != "$before" ]; then
    fail "$CASE: a refused request reached the upstream: $(tail -1 "$RECORD")"
  fi
  echo "ok  $CASE -> $status $kind"
}
