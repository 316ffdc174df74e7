#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# completions/claudegate.bash in a real interactive bash (in tmux): typing
# "claudegate <TAB><TAB>" lists the commands, "claudegate verify --no<TAB>"
# completes the option in place.
source "$(dirname "$0")/../cli/common.sh"
command -v tmux >/dev/null || { echo "SKIPPED: tmux not installed"; exit 77; }
SRC=${CLAUDEGATE_SOURCE_DIR:?CLAUDEGATE_SOURCE_DIR must point at the source tree}
mkdir -p "$SCRATCH/bin"
ln -s "$CG" "$SCRATCH/bin/claudegate"
SOCKET=$SCRATCH/tmux.sock
tmx() { tmux -S "$SOCKET" "$@"; }
trap 'tmx kill-server 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT

cat >"$SCRATCH/bashrc" <<RC
PS1='cg\$ '
PATH=$SCRATCH/bin:\$PATH
source $SRC/completions/claudegate.bash
RC
tmx -f /dev/null new-session -d -x 200 -y 50 "env INPUTRC=/dev/null bash --noprofile --rcfile $SCRATCH/bashrc -i"

# Wait up to 10 s for the pane to contain $1.
wait_pane() {
  local i
  for ((i = 0; i < 100; i++)); do
    grep -F -- "$1" <<<"$(tmx capture-pane -p)" >/dev/null && return 0
    sleep 0.1
  done
  fail "pane never showed '$1':
$(tmx capture-pane -p)"
}

wait_pane 'cg$'
tmx send-keys 'claudegate ' Tab Tab
wait_pane usage-report
pane=$(tmx capture-pane -p)
for cmd in keygen issue verify revoke jwks serve-local usage-report inspect; do
  expect_contains "$pane" "$cmd"
done
expect_not_contains "$pane" __complete
tmx send-keys C-u 'clear' Enter
tmx send-keys 'claudegate verify --no' Tab
wait_pane 'claudegate verify --no-revocation'
pass
