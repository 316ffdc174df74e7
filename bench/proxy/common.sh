# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared by run.sh and streams.sh: tool checks, a scratch folder whose
# processes the EXIT trap stops, a signing key plus bench token, serve-local
# on a free port, and wrk's "result k=v …" lines (messages.lua).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/scripts/lib/serve_local.sh"
build_dir=${BUILD_DIR:-build-release}
[[ $build_dir == /* ]] || build_dir=$root/$build_dir
CG=${CG:-$build_dir/apps/claudegate/claudegate}
API_KEY=sk-ant-bench-dummy

die() {
  echo "bench/proxy: error: $*" >&2
  exit 1
}

# Fail unless every command in "$@" is installed.
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh installs it)"
  done
  [ -x "$CG" ] || die "no claudegate binary at $CG; build first (BUILD_DIR) or set CG"
}

scratch=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

# A key, then an admin token whose huge daily limit keeps the quota check (and its headers) on.
mint_token() {
  export CLAUDEGATE_HOME=$scratch/home
  "$CG" keygen >/dev/null
  TOKEN=$("$CG" issue --sub bench --plan admin --daily-token-limit 1000000000000 --ttl 1h)
  export TOKEN
}

# Start serve-local on a free port in front of upstream URL $1, extra flags "$@";
# sets SERVE_URL and SERVE_PID.
start_serve_local() {
  local upstream=$1 err=$scratch/serve-local.err
  shift
  : >"$err" # before the server starts: the redirection below runs in the background job
  ANTHROPIC_API_KEY=$API_KEY "$CG" serve-local --listen 127.0.0.1:0 --upstream "$upstream" \
    --log "$scratch/serve-local.log" "$@" 2>"$err" &
  SERVE_PID=$!
  pids+=("$SERVE_PID")
  # shellcheck disable=SC2034 # used by the scripts that source this file
  SERVE_URL=$(serve_local_url "$err" "$SERVE_PID") || die "see above"
}

# Stop serve-local with SIGTERM; it drains and meters what is in flight.
stop_serve_local() {
  kill -TERM "$SERVE_PID"
  wait "$SERVE_PID" 2>/dev/null || true
}

# wrk -t $2 -c $3 for $4 seconds against $1 with messages.lua; prints its "result …" line.
wrk_result() {
  local out
  out=$(wrk -t "$2" -c "$3" -d "${4}s" --timeout 5s -s "$here/messages.lua" "$1")
  grep '^result ' <<<"$out" || die "wrk printed no result for $1: $out"
}

# Field $2 (e.g. p99_ms) of a "result k=v …" line $1.
field() {
  tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"
}
