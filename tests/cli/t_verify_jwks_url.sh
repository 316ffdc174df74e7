#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# verify --jwks URL: tokens of an external IdP (signed by PyJWT with keys
# our keyring lacks) verify against its JWKS fetched over loopback http; the
# document is cached between runs, a rotated key is refetched, a second
# unknown kid within 30 s causes no extra fetch, and an IdP that hangs,
# answers 404 or garbage, or a remote plain-http URL fail with a clear message.
source "$(dirname "$0")/common.sh"
"$PY" -c 'import jwt, cryptography' 2>/dev/null || { echo "SKIPPED: python3-jwt missing"; exit 77; }
IDP_PY=$(dirname "$0")/fake_idp.py
IDP=$SCRATCH/idp
mkdir -p "$IDP"
IDP_PID=
trap '[ -n "$IDP_PID" ] && kill "$IDP_PID" 2>/dev/null; rm -rf "$SCRATCH"' EXIT

for name in idp-key-1 idp-key-2 idp-key-3; do "$PY" "$IDP_PY" keypair "$IDP" "$name"; done
"$PY" "$IDP_PY" jwks "$IDP" idp-key-1
"$PY" "$IDP_PY" serve "$IDP" &
IDP_PID=$!
for ((i = 0; i < 100; i++)); do [ -s "$IDP/port" ] && break; sleep 0.1; done
[ -s "$IDP/port" ] || fail "the fake IdP did not start"
BASE_URL="http://127.0.0.1:$(cat "$IDP/port")"
URL="$BASE_URL/jwks.json"
ISS=https://idp.example/
fetches() { if [ -f "$IDP/requests" ]; then wc -l <"$IDP/requests" | tr -d ' '; else echo 0; fi; }
token() { "$PY" "$IDP_PY" sign "$IDP" "$1" "$ISS" claude-proxy "$2"; }

# Our own keyring exists but knows nothing of the IdP's keys.
expect_exit 0 "$CG" keygen
T1=$(token idp-key-1 alice)
expect_exit 3 "$CG" verify "$T1"
expect_contains "$ERR" "unknown kid"

# Valid IdP token: one fetch; the second run is served from the disk cache.
expect_exit 0 "$CG" verify --jwks "$URL" --iss "$ISS" "$T1"
[ "$(json_get "$OUT" 'd["sub"]')" = alice ] || fail "claims: $OUT"
expect_exit 0 "$CG" verify --jwks "$URL" --iss "$ISS" --json "$T1"
[ "$(json_get "$OUT" 'd["valid"]')" = True ] || fail "json: $OUT"
[ "$(fetches)" = 1 ] || fail "expected 1 fetch, saw $(fetches)"
# Revocations of IdP subjects live under "ISS|sub", as serve-local keeps them:
# revoking the local alice leaves the IdP's alice valid, revoking ISS|alice does not.
expect_exit 0 "$CG" revoke --sub alice
expect_exit 0 "$CG" verify --jwks "$URL" --iss "$ISS" "$T1"
expect_exit 0 "$CG" revoke --sub "${ISS}|alice"
expect_exit 5 "$CG" verify --jwks "$URL" --iss "$ISS" "$T1"
expect_contains "$ERR" "${ISS}|alice"
expect_exit 0 "$CG" verify --jwks "$URL" --iss "$ISS" --no-revocation "$T1"
cache=$(ls "$CLAUDEGATE_HOME"/cache/jwks/*.json)
[ "$(mode_of "$cache")" = 600 ] || fail "cache file mode $(mode_of "$cache")"
[ "$(mode_of "$CLAUDEGATE_HOME/cache/jwks")" = 700 ] || fail "cache folder mode"
# Its issuer must still match.
expect_exit 3 "$CG" verify --jwks "$URL" "$T1"
expect_contains "$ERR" "$ISS"

# The IdP rotates to key 2. Within 30 s of the last fetch the new kid is
# not refetched (unknown_key, no request); once 30 s have passed it is.
"$PY" "$IDP_PY" jwks "$IDP" idp-key-2
T2=$(token idp-key-2 bob)
expect_exit 3 "$CG" verify --jwks "$URL" --iss "$ISS" "$T2"
expect_contains "$ERR" "unknown kid"
[ "$(fetches)" = 1 ] || fail "an unknown kid within 30 s was refetched: $(fetches) fetches"
# Age the cache entry by 31 s instead of sleeping.
"$PY" -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d["fetched_at"]-=31; json.dump(d,open(p,"w"))' "$cache"
expect_exit 0 "$CG" verify --jwks "$URL" --iss "$ISS" "$T2"
[ "$(json_get "$OUT" 'd["sub"]')" = bob ] || fail "claims: $OUT"
[ "$(fetches)" = 2 ] || fail "the rotated key was not refetched once: $(fetches) fetches"
# A second unknown kid right after: no extra fetch, unknown_key.
T3=$(token idp-key-3 carol)
expect_exit 3 "$CG" verify --jwks "$URL" --iss "$ISS" --json "$T3"
[ "$(json_get "$OUT" 'd["code"]')" = unknown_key ] || fail "json: $OUT"
[ "$(fetches)" = 2 ] || fail "a second unknown kid within 30 s was fetched: $(fetches) fetches"
# Key 1 was rotated out: its tokens fail now.
expect_exit 3 "$CG" verify --jwks "$URL" --iss "$ISS" "$T1"

# An IdP that never answers: fails in about 5 s, naming the URL.
export CLAUDEGATE_HOME=$SCRATCH/home-hang
started=$(date +%s)
expect_exit 1 "$CG" verify --jwks "$BASE_URL/hang" --iss "$ISS" "$T2"
took=$(($(date +%s) - started))
[ "$took" -ge 4 ] && [ "$took" -le 15 ] || fail "a hanging IdP took ${took}s (expected about 5s, not its 120s)"
expect_contains "$ERR" "$BASE_URL/hang"
expect_contains "$ERR" "timed out"

# 404 and a body that is not a JWKS: failure (exit 1) naming the URL.
expect_exit 1 "$CG" verify --jwks "$BASE_URL/missing" --iss "$ISS" "$T2"
expect_contains "$ERR" "HTTP 404"
expect_contains "$ERR" "$BASE_URL/missing"
expect_exit 1 "$CG" verify --jwks "$BASE_URL/garbage" --iss "$ISS" "$T2"
expect_contains "$ERR" "not a usable key set"
# Nothing listening: failure naming the URL.
expect_exit 1 "$CG" verify --jwks "http://127.0.0.1:1/jwks.json" --iss "$ISS" "$T2"
expect_contains "$ERR" "cannot fetch JWKS from http://127.0.0.1:1/jwks.json"

# Plain http to a host that is not loopback is refused before any request (usage, exit 2).
expect_exit 2 "$CG" verify --jwks "http://idp.example/.well-known/jwks.json" --iss "$ISS" "$T2"
expect_contains "$ERR" "use https://"
[ ! -d "$CLAUDEGATE_HOME/cache/jwks" ] || [ -z "$(ls "$CLAUDEGATE_HOME/cache/jwks")" ] \
  || fail "failed fetches left cache entries"
pass
