#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# completions/: the bash function offers commands, options and option values
# (also for bash's split "--opt = value" words); zsh and fish load the
# scripts without errors and offer the same candidates.
source "$(dirname "$0")/../cli/common.sh"
SRC=${CLAUDEGATE_SOURCE_DIR:?CLAUDEGATE_SOURCE_DIR must point at the source tree}
# The scripts run "claudegate" as the user typed it: put the built one first.
mkdir -p "$SCRATCH/bin"
ln -s "$CG" "$SCRATCH/bin/claudegate"
export PATH=$SCRATCH/bin:$PATH
COMMANDS="keygen issue verify revoke jwks serve-local usage-report inspect"

# COMPREPLY of the bash completion for words "$@" (the last one under the cursor).
bash_complete() {
  bash --norc --noprofile -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _claudegate claudegate "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf "%s\n" "${COMPREPLY[@]}"' bash "$SRC/completions/claudegate.bash" "$@"
}

# Require every word of $2 as a whole line of $1.
expect_lines() {
  local word
  for word in $2; do
    grep -x -- "$word" <<<"$1" >/dev/null || fail "expected '$word' among: $1"
  done
}

verify_options=$("$CG" verify --help | grep -oE '^  (-h,)?--[a-z-]+' | grep -oE -- '--[a-z-]+')

out=$(bash_complete claudegate "")
expect_lines "$out" "$COMMANDS"
[ "$(echo "$out" | wc -l)" -eq 8 ] || fail "bash offers more than the 8 commands: $out"
expect_lines "$(bash_complete claudegate ver)" verify
expect_lines "$(bash_complete claudegate verify --)" "$verify_options"
expect_not_contains "$(bash_complete claudegate verify --)" "--sub"
expect_lines "$(bash_complete claudegate verify --no)" --no-revocation
expect_lines "$(bash_complete claudegate issue --)" "--sub --refresh-token --home --config"
expect_lines "$(bash_complete claudegate keygen --alg "")" "RS256 RS384 RS512 PS256 ES256 ES384 EdDSA HS256"
expect_lines "$(bash_complete claudegate keygen --bits "")" "2048 3072 4096"
expect_lines "$(bash_complete claudegate usage-report --by "")" "sub day model"
[ "$(bash_complete claudegate usage-report --format "")" = "$(printf 'table\njson\ncsv')" ] || fail "--format values"
# bash splits "--format=j" at '=' (COMP_WORDBREAKS); readline then replaces only "j".
[ "$(bash_complete claudegate usage-report --format = j)" = json ] || fail "--format = j"
expect_lines "$(bash_complete claudegate usage-report --format =)" "table json csv"
[ "$(bash_complete claudegate usage-report --format=c)" = --format=csv ] || fail "--format=c"
expect_lines "$(bash_complete claudegate issue --plan "")" "free pro admin"
# A value is not mistaken for a command, and a flag takes none.
[ -z "$(bash_complete claudegate issue --sub keygen --ttl "")" ] || fail "--ttl offers values"
expect_lines "$(bash_complete claudegate keygen --rotate --)" --alg
# Paths: file names for --out, folders only for --home.
mkdir -p "$SCRATCH/pick/dir1"
touch "$SCRATCH/pick/file1"
expect_lines "$(bash_complete claudegate jwks --out "$SCRATCH/pick/f")" "$SCRATCH/pick/file1"
out=$(bash_complete claudegate --home "$SCRATCH/pick/")
expect_lines "$out" "$SCRATCH/pick/dir1"
expect_not_contains "$out" file1

# zsh: the script loads under compinit and registers itself; with zsh's
# completion widgets stubbed it hands the same candidates to _describe.
zsh_complete() {
  zsh -f -c '
    autoload -U compinit; compinit -u -D
    source "$1"; shift
    [[ $_comps[claudegate] == _claudegate ]] || { print "not registered"; exit 1 }
    _describe() { print -l -- "${(@P)argv[-1]}" }
    _files() { print -- "_files $*" }
    words=("$@"); CURRENT=$#
    _claudegate' zsh "$SRC/completions/_claudegate" "$@" 2>&1
}
out=$(zsh_complete claudegate "")
expect_lines "$(echo "$out" | cut -d: -f1)" "$COMMANDS"
expect_contains "$out" "verify:Verify a token"
expect_lines "$(zsh_complete claudegate verify -- | cut -d: -f1)" "$verify_options"
expect_lines "$(zsh_complete claudegate usage-report --by "" | cut -d: -f1)" "sub day model"
[ "$(zsh_complete claudegate jwks --out "")" = "_files " ] || fail "zsh --out: not _files"
[ "$(zsh_complete claudegate --home "")" = "_files -/" ] || fail "zsh --home: not _files -/"

# fish: the script parses, loads, and `complete -C` offers commands and options.
fish -n "$SRC/completions/claudegate.fish" || fail "fish -n rejects claudegate.fish"
fish_complete() {
  fish --no-config -c 'source $argv[1]; complete -C $argv[2]' "$SRC/completions/claudegate.fish" "$1" 2>&1
}
out=$(fish_complete "claudegate ver")
expect_lines "$(echo "$out" | cut -f1)" verify
expect_contains "$out" "Verify a token"
expect_lines "$(fish_complete "claudegate " | cut -f1)" "$COMMANDS"
expect_lines "$(fish_complete "claudegate verify --" | cut -f1)" "$verify_options"
expect_lines "$(fish_complete "claudegate keygen --alg " | cut -f1)" "RS256 EdDSA HS256"
expect_lines "$(fish_complete "claudegate jwks --out $SCRATCH/pick/fi" | cut -f1)" "$SCRATCH/pick/file1"
pass
