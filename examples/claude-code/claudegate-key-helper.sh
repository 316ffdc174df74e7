#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Claude Code apiKeyHelper: trade the stored refresh token for a fresh access
# token, keep the rotated refresh token (each is single use) and print the
# access token on stdout — the one line Claude Code reads. When it cannot, it
# says why on stderr (Claude Code shows it) and exits 1, printing nothing.
#
#   ~/.claude/settings.json:  { "apiKeyHelper": "/path/to/claudegate-key-helper.sh" }
#
# Environment:
#   CLAUDEGATE_REFRESH_FILE  the refresh token, mode 0600
#                            (default ${XDG_CONFIG_HOME:-~/.config}/claudegate/refresh-token)
#   CLAUDEGATE_REFRESH_URL   optional: the gateway's /auth/refresh, for machines
#                            without the claudegate store (default: the local CLI)
#   CLAUDEGATE_BIN           the claudegate binary (default: claudegate on PATH)
set -eu
umask 077
file=${CLAUDEGATE_REFRESH_FILE:-${XDG_CONFIG_HOME:-$HOME/.config}/claudegate/refresh-token}
cg=${CLAUDEGATE_BIN:-claudegate}

die() {
  echo "claudegate-key-helper: $*" >&2
  exit 1
}

# Member $1 of the one-line JSON reply on stdin (token values never hold quotes).
member() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# The "message" of the JSON error on stdin: `issue --json`'s {"error":{…}} or
# the gateway's error envelope; escaped characters are left escaped.
error_message() { sed -nE 's/.*"message":"(([^"\\]|\\.)*)".*/\1/p' | head -n 1; }

# POST the refresh token to the gateway: the new pair on stdout, or the
# error body (or curl's own complaint) on stderr and status 1.
rotate_via_gateway() {
  out=$(printf '{"refresh_token":"%s"}' "$(cat "$file")" |
    curl -sS --max-time 20 -H 'content-type: application/json' --data-binary @- \
      -w '\n%{http_code}' "$CLAUDEGATE_REFRESH_URL") || return 1
  status=$(printf '%s\n' "$out" | tail -n 1)
  body=$(printf '%s\n' "$out" | sed '$d')
  if [ "$status" != 200 ]; then
    printf 'HTTP %s from %s: %s\n' "$status" "$CLAUDEGATE_REFRESH_URL" "$body" >&2
    return 1
  fi
  printf '%s\n' "$body"
}

# Exchange the refresh token in $file for a new pair: its JSON on stdout; why
# not on stderr (`issue --json` writes its JSON error there).
rotate() {
  if [ -n "${CLAUDEGATE_REFRESH_URL:-}" ]; then
    rotate_via_gateway
  else
    "$cg" issue --refresh-token - --json <"$file"
  fi
}

[ -f "$file" ] || die "no refresh token in $file; get one with 'claudegate issue --sub YOU --refresh --json' and store its refresh_token there (mode 0600)"
mode=$(stat -c %a "$file" 2>/dev/null || stat -f %Lp "$file")
case $mode in
  600 | 400) ;;
  *) die "$file has mode $mode; a refresh token must be private: chmod 600 $file" ;;
esac

# One rotation at a time: two Claude Code sessions presenting the same refresh
# token would look like a stolen token (reuse) and revoke the whole family.
exec 9>"$file.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

errors=$(mktemp "$file.err.XXXXXX")
trap 'rm -f "$errors"' EXIT
if ! reply=$(rotate 2>"$errors"); then
  why=$(error_message <"$errors")
  [ -n "$why" ] || why=$(tr '\n' ' ' <"$errors")
  die "could not rotate the refresh token in $file: ${why:-no reason given (a spent or revoked refresh token needs a new one: claudegate issue --sub YOU --refresh --json)}"
fi
access=$(printf '%s\n' "$reply" | member access_token)
refresh=$(printf '%s\n' "$reply" | member refresh_token)
if [ -z "$access" ] || [ -z "$refresh" ]; then
  die "unexpected reply from the rotation: $reply"
fi

# Keep the new refresh token (atomically, 0600) before printing: the old one is spent now.
tmp=$(mktemp "$file.XXXXXX")
printf '%s\n' "$refresh" >"$tmp"
mv -f "$tmp" "$file"
printf '%s\n' "$access"
