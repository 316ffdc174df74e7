#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# man page: groff -ww reports nothing, man renders it, and it has the usual sections.
source "$(dirname "$0")/../cli/common.sh"
command -v groff >/dev/null || { echo "SKIPPED: groff not installed"; exit 77; }
MAN=${CLAUDEGATE_SOURCE_DIR:?CLAUDEGATE_SOURCE_DIR must point at the source tree}/man/claudegate.1

# groff's warnings (all of them) for page $1.
lint() { groff -man -ww -Tutf8 -z "$1" 2>&1; }

warnings=$(lint "$MAN")
[ -z "$warnings" ] || fail "groff warnings in man/claudegate.1:
$warnings"

# The lint does catch a broken page: an unknown macro and an unclosed font.
{ cat "$MAN"; printf '.XY bogus\n\\fBunclosed\n'; } >"$SCRATCH/broken.1"
[ -n "$(lint "$SCRATCH/broken.1")" ] || fail "groff -ww did not warn about a broken page"

text=$(groff -man -Tutf8 -P -cbou "$MAN" 2>/dev/null)
for section in NAME SYNOPSIS DESCRIPTION "GLOBAL OPTIONS" COMMANDS "EXIT STATUS" ENVIRONMENT FILES \
  EXAMPLES SECURITY "SEE ALSO"; do
  grep -x "$section" <<<"$text" >/dev/null || fail "section $section missing"
done
if command -v man >/dev/null; then
  rendered=$(MANWIDTH=80 man -l "$MAN" 2>&1)
  expect_contains "$rendered" "claudegate serve-local"
  expect_contains "$rendered" "EXIT STATUS"
fi
pass
