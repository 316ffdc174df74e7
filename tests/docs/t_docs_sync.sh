#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# docs sync (git's t0012-help idea): every command of `claudegate --help`
# answers --help, and each of its long options is documented in its man page
# section and offered by the completion machinery; global options, exit
# statuses, environment variables and config keys of the code are in the man
# page. A man page with one option deleted must fail the same check.
source "$(dirname "$0")/../cli/common.sh"
SRC=${CLAUDEGATE_SOURCE_DIR:?CLAUDEGATE_SOURCE_DIR must point at the source tree}
MAN=$SRC/man/claudegate.1

# The commands listed under "Subcommands:" in `claudegate --help`.
commands() { "$CG" --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'; }

# The long options of a --help text on stdin (option lines are indented by two).
long_options() { grep -oE '^  (-[a-zA-Z],)?--[a-z0-9-]+' | grep -oE -- '--[a-z0-9-]+'; }

# Lines of man page $1 under header line $2 (".SS verify", ".SH ENVIRONMENT")
# up to the next header, with roff's \- read as -.
man_section() { sed 's/\\-/-/g' "$1" | awk -v head="$2" '/^\.S[SH] / { on = ($0 == head) } on'; }

# Whether word $1 (an option, a name) appears whole in stdin.
# (grep reads all its input: an early exit would fail the pipeline under pipefail.)
has_word() { grep -E -- "(^|[^A-Za-z0-9_-])$1([^A-Za-z0-9_-]|\$)" >/dev/null; }

# The options a completion of "claudegate $* <cursor>" offers.
offered() {
  "$CG" __complete -- "$@" >"$SCRATCH/complete" || fail "claudegate __complete -- $* failed"
  tail -n +2 "$SCRATCH/complete" | cut -f1
}

# Help text of every command, once: $HELP_DIR/<command>.
HELP_DIR=$SCRATCH/help
mkdir -p "$HELP_DIR"
expect_exit 0 "$CG" --help
echo "$OUT" >"$HELP_DIR/claudegate"
COMMANDS=$(commands)
[ "$(echo "$COMMANDS" | wc -l)" -ge 8 ] || fail "too few commands in --help: $COMMANDS"
for cmd in $COMMANDS; do
  expect_exit 0 "$CG" "$cmd" --help
  echo "$OUT" >"$HELP_DIR/$cmd"
done

# Every command's long options (but --help, a global) in its man section; the
# global options in GLOBAL OPTIONS. Prints what is missing; fails if anything is.
check_man() {
  local page=$1 missing=0 cmd opt
  for cmd in $COMMANDS; do
    man_section "$page" ".SS $cmd" | grep . >/dev/null || { echo "no '.SS $cmd' section"; missing=1; continue; }
    for opt in $(long_options <"$HELP_DIR/$cmd" | grep -vx -- --help); do
      man_section "$page" ".SS $cmd" | has_word "$opt" || { echo "$cmd $opt missing"; missing=1; }
    done
  done
  for opt in $(long_options <"$HELP_DIR/claudegate"); do
    man_section "$page" ".SH GLOBAL OPTIONS" | has_word "$opt" || { echo "global $opt missing"; missing=1; }
  done
  return "$missing"
}

report=$(check_man "$MAN") || fail "man page out of sync with --help:
$report"

# The check must notice a deleted option: drop the lines naming the first
# option of each command from its section in a copy of the page.
for cmd in $COMMANDS; do
  opt=$(long_options <"$HELP_DIR/$cmd" | grep -vx -- --help | head -1)
  [ -n "$opt" ] || continue
  sed 's/\\-/-/g' "$MAN" | awk -v head=".SS $cmd" -v opt="$opt" '
    /^\.S[SH] / { on = ($0 == head) }
    !(on && index($0, opt)) { print }' >"$SCRATCH/broken.1"
  ! cmp -s <(sed 's/\\-/-/g' "$MAN") "$SCRATCH/broken.1" || fail "could not delete $opt from .SS $cmd"
  if report=$(check_man "$SCRATCH/broken.1"); then
    fail "check_man passed a man page without '$cmd $opt'"
  fi
  expect_contains "$report" "$cmd $opt missing"
done

# Completion offers every command and every long option of each.
top=$(offered "")
for cmd in $COMMANDS; do
  grep -x -- "$cmd" <<<"$top" >/dev/null || fail "completion does not offer command $cmd: $top"
  options=$(offered "$cmd" --)
  for opt in $(long_options <"$HELP_DIR/$cmd"); do
    grep -x -- "$opt" <<<"$options" >/dev/null || fail "completion of '$cmd --' lacks $opt: $options"
  done
done
for opt in $(long_options <"$HELP_DIR/claudegate"); do
  offered -- | grep -x -- "$opt" >/dev/null || fail "completion of '--' lacks global $opt"
done
expect_not_contains "$top" "__complete"

# --version prints the project version, which the man page's title carries too.
version=$(sed -n 's/^project(claudegate VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ -n "$version" ] || fail "no project version in CMakeLists.txt"
expect_exit 0 "$CG" --version
[ "$OUT" = "$version" ] || fail "--version printed '$OUT', the project is $version"
grep -q "^\.TH CLAUDEGATE 1 .*\"claudegate $version\"" "$MAN" || fail "man page .TH is not for version $version"

# Exit statuses (apps/claudegate/exit_code.hpp) in EXIT STATUS.
statuses=$(sed -n '/enum class ExitCode/,/};/p' "$SRC/apps/claudegate/exit_code.hpp" | grep -oE '= [0-9]+' | tr -dc '0-9\n')
[ "$(echo "$statuses" | wc -l)" -ge 7 ] || fail "could not read ExitCode: $statuses"
for status in $statuses; do
  man_section "$MAN" ".SH EXIT STATUS" | grep -x "\.B $status" >/dev/null || fail "exit status $status not in EXIT STATUS"
done

# Environment variables the code reads (envname, getenv) in ENVIRONMENT.
envs=$(grep -rhoE '(envname|getenv|env)\("[A-Z_]+"\)' "$SRC/apps" "$SRC/lib" | grep -oE '[A-Z_]{2,}' | sort -u)
[ -n "$envs" ] || fail "found no environment variables in the code"
for name in $envs; do
  man_section "$MAN" ".SH ENVIRONMENT" | grep -x "\.B $name" >/dev/null || fail "environment variable $name not in ENVIRONMENT"
done

# Config keys, from the table that parses them (`claudegate __config-keys`), each
# in its list in FILES: top-level keys, [serve], [plans.NAME].
expect_exit 0 "$CG" __config-keys
KEYS=$OUT
[ "$(echo "$KEYS" | wc -l)" -ge 20 ] || fail "too few config keys: $KEYS"
# The FILES lines of page $1 from the one containing $2 to the next .RE.
key_list() {
  man_section "$1" ".SH FILES" | awk -v start="$2" 'index($0, start) && !seen { on = seen = 1 } on { print } on && /^\.RE/ { on = 0 }'
}
# Prints the keys missing from page $1; fails if any is.
check_keys() {
  local page=$1 missing=0 name type list
  while IFS=$'\t' read -r name type _; do
    case $name:$type in
      *:table) list=$(man_section "$page" ".SH FILES" | grep -F "[$name" || true) ;;
      serve.lockout.*) list=$(key_list "$page" ".B [serve.lockout]") ;;
      serve.*) list=$(key_list "$page" ".B [serve]") ;;
      plans.NAME.*) list=$(key_list "$page" ".BI [plans.") ;;
      access.*) list=$(key_list "$page" ".B [access]") ;;
      *) list=$(key_list "$page" "Top-level keys") ;;
    esac
    has_word "${name##*.}" <<<"$list" || { echo "config key $name missing"; missing=1; }
  done <<<"$KEYS"
  return "$missing"
}
report=$(check_keys "$MAN") || fail "man page FILES out of sync with the config keys:
$report"
sed 's/\\-/-/g' "$MAN" | grep -v '^\.B upstream_timeout$' >"$SCRATCH/nokey.1"
if report=$(check_keys "$SCRATCH/nokey.1"); then
  fail "check_keys passed a man page without upstream_timeout"
fi
expect_contains "$report" "config key serve.upstream_timeout missing"
pass
