#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libcrypto failing under claudegate (LD_PRELOAD shim openssl_fail.c): verify
# never accepts a valid token it could not check, issue and keygen leave no
# half token, store row or key file, a failed rotation leaves the presented
# refresh token usable, and serve-local refuses without forwarding.
source "$(dirname "$0")/../proxy/proxy_common.sh"
PROXY_DIR=$(cd "$(dirname "$0")/../proxy" && pwd) # fake_upstream.py lives there
SHIM=${CLAUDEGATE_OPENSSL_FAIL_SHIM:-}
[ -f "$SHIM" ] || { echo "SKIPPED: CLAUDEGATE_OPENSSL_FAIL_SHIM not built"; exit 77; }
# An ASan claudegate wants its runtime first in the library list; the shim goes first here.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
REAL_CG=$CG
HITS=$SCRATCH/hits

# Run claudegate with OpenSSL function $1 failing after $2 good calls, then the rest.
faulty() {
  local fn=$1 after=$2
  shift 2
  rm -f "$HITS"
  env LD_PRELOAD="$SHIM" CLAUDEGATE_OPENSSL_FAIL="$fn" CLAUDEGATE_OPENSSL_FAIL_AFTER="$after" \
    CLAUDEGATE_OPENSSL_FAIL_LOG="$HITS" "$REAL_CG" "$@"
}

# The last command failed closed: status $1 (or any non-zero when "any"),
# nothing on stdout, a diagnostic naming $2, and the fault was really injected.
failed_closed() {
  [ "$STATUS" != 0 ] || fail "exit 0 with a failing OpenSSL (${FN}): $OUT"
  [ "$1" = any ] || [ "$STATUS" = "$1" ] || fail "${FN}: exit $STATUS, want $1: $ERR"
  [ -z "$OUT" ] || fail "${FN}: wrote to stdout: $OUT"
  expect_contains "$ERR" "$2"
  [ -s "$HITS" ] || fail "${FN}: the fault was never injected"
}

# Run faulty "$@" recording status, stdout and stderr.
run_faulty() {
  FN=$1
  STATUS=0
  faulty "$@" >"$SCRATCH/out" 2>"$SCRATCH/err" || STATUS=$?
  OUT=$(cat "$SCRATCH/out")
  ERR=$(cat "$SCRATCH/err")
}

"$CG" keygen >/dev/null
TOKEN=$("$CG" issue --sub alice --plan pro)
HS_HOME=$SCRATCH/hs
"$CG" --home "$HS_HOME" keygen --alg HS256 >/dev/null
HS_TOKEN=$("$CG" --home "$HS_HOME" issue --sub bob --plan pro)
expect_exit 0 "$CG" verify "$TOKEN"

# verify: a valid token is never accepted when its check could not run.
run_faulty EVP_DigestVerify 0 verify "$TOKEN"
failed_closed 3 "claudegate: error: RS256 signature does not verify"
for fn in EVP_DigestVerifyInit_ex EVP_MD_CTX_copy_ex; do
  run_faulty "$fn" 0 verify "$TOKEN"
  failed_closed 1 "OpenSSL failed, not the input"
done
run_faulty EVP_Digest 0 verify "$TOKEN" # the kid thumbprint at key load
failed_closed 1 "claudegate: error: key file"
for fn in EVP_MAC_CTX_dup EVP_MAC_init EVP_MAC_final; do
  run_faulty "$fn" 0 --home "$HS_HOME" verify "$HS_TOKEN"
  failed_closed 1 "computing HMAC-SHA256"
done

# issue: no token printed, no refresh family stored, whichever step fails.
db=$CLAUDEGATE_HOME/claudegate.db
pair=$("$CG" issue --sub carol --refresh --json)
R=$(json_get "$pair" 'd["refresh_token"]')
rows() { ledger "select (select count(*) from refresh_families) || '/' || (select count(*) from refresh_tokens)"; }
before=$(rows)
for spec in EVP_DigestSign:0 EVP_DigestSign:1 EVP_DigestSignInit_ex:0 EVP_MD_CTX_copy_ex:0 EVP_Digest:1; do
  run_faulty "${spec%%:*}" "${spec##*:}" issue --sub carol --refresh
  failed_closed 1 "OpenSSL failed, not the input"
  [ "$(rows)" = "$before" ] || fail "$spec: store rows $before -> $(rows)"
done
# No randomness: abort with a message before anything is minted or stored.
run_faulty RAND_bytes 0 issue --sub carol --refresh
failed_closed 134 "the system random generator failed"
[ "$(rows)" = "$before" ] || fail "RAND_bytes: store rows $before -> $(rows)"

# A rotation whose signing fails leaves the presented token active (not reuse).
run_faulty EVP_DigestSign 0 issue --refresh-token "$R"
failed_closed 1 "signature"
expect_exit 0 "$CG" issue --refresh-token "$R"
[ "$(sqlite3 "$db" 'pragma integrity_check')" = ok ] || fail "integrity_check"

# keygen: no key file, no index, no temporary left behind.
for spec in EVP_PKEY_generate: PEM_write_bio_PrivateKey: EVP_Digest: "EVP_PKEY_generate:--alg ES256" \
  "PEM_write_bio_PrivateKey:--alg EdDSA"; do
  fresh=$SCRATCH/keygen-home
  rm -rf "$fresh"
  # shellcheck disable=SC2086 # the extra arguments are meant to split
  run_faulty "${spec%%:*}" 0 --home "$fresh" keygen ${spec#*:}
  failed_closed 1 "OpenSSL failed, not the input"
  [ -z "$(ls -A "$fresh/keys" 2>/dev/null)" ] || fail "$spec left: $(ls -A "$fresh/keys")"
done
# A failed --rotate keeps the old signer as it was.
keys_before=$(cd "$CLAUDEGATE_HOME/keys" && sha256sum -- *)
run_faulty PEM_write_bio_PrivateKey 0 keygen --rotate
failed_closed 1 "writing private key PEM"
[ "$(cd "$CLAUDEGATE_HOME/keys" && sha256sum -- *)" = "$keys_before" ] || fail "a failed rotation changed keys/"
expect_exit 0 "$CG" verify "$TOKEN"

# serve-local: a token it cannot check is refused and nothing is forwarded.
start_fake_upstream
cat >"$SCRATCH/cg-faulty" <<EOF
#!/bin/sh
exec env LD_PRELOAD="$SHIM" CLAUDEGATE_OPENSSL_FAIL="\$FAIL_FN" CLAUDEGATE_OPENSSL_FAIL_LOG="$HITS" "$REAL_CG" "\$@"
EOF
chmod +x "$SCRATCH/cg-faulty"
# serve-local over home $2 with function $1 failing: one request with token $3 answers $4 ($5).
serve_faulty() {
  rm -f "$HITS"
  FAIL_FN=$1 CG=$SCRATCH/cg-faulty CLAUDEGATE_HOME=$2 ANTHROPIC_API_KEY=sk-ant-server-key \
    start_server --upstream "$UPSTREAM_URL"
  call "$BASE/v1/messages" -H "x-api-key: $3" -d "$MSG"
  expect_status "$4"
  expect_envelope "$5"
  [ -s "$HITS" ] || fail "serve-local with $1: the fault was never injected"
  stop_server
}
serve_faulty EVP_DigestVerify "$CLAUDEGATE_HOME" "$TOKEN" 401 authentication_error
serve_faulty EVP_MD_CTX_copy_ex "$CLAUDEGATE_HOME" "$TOKEN" 500 api_error
serve_faulty EVP_MAC_final "$HS_HOME" "$HS_TOKEN" 500 api_error
[ ! -s "$RECORD" ] || fail "forwarded with a failing OpenSSL: $(cat "$RECORD")"
pass
