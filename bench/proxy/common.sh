# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared by run.sh, streams.sh and idle.sh: tool checks, the open-file limit
# raised to the hard limit, a scratch folder whose processes the EXIT trap
# stops, a signing key plus bench token, private nginx servers, serve-local on
# a free port, wrk's "result k=v …" lines (messages.lua) and the ledger check.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../../scripts/lib/serve_local.sh
source "$root/scripts/lib/serve_local.sh"
build_dir=${BUILD_DIR:-build-release}
[[ $build_dir == /* ]] || build_dir=$root/$build_dir
CG=${CG:-$build_dir/apps/claudegate/claudegate}
API_KEY=sk-ant-bench-dummy
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

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

# Thousands of sockets per process (streams, idle connections): the soft
# open-file limit goes up to the hard one for this script and what it starts.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Fail unless the soft open-file limit allows $1 descriptors in one process.
need_files() {
  local limit
  limit=$(ulimit -n)
  [ "$limit" = unlimited ] || [ "$limit" -ge "$1" ] ||
    die "$1 open files needed in one process, the limit is $limit (ulimit -Hn $(ulimit -Hn)); raise it"
}

# Fail unless nginx is installed.
need_nginx() {
  [ -x "$NGINX" ] || die "nginx not found at $NGINX (scripts/install-deps.sh installs nginx-light)"
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

# Two free loopback ports, held together while chosen so they differ.
free_ports() {
  python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))'
}

# Fill the @NAME@ placeholders of template $1 from "NAME=value" pairs "$@".
render() {
  local template=$1 pair args=()
  shift
  for pair in "$@"; do args+=(-e "s|@${pair%%=*}@|${pair#*=}|g"); done
  sed "${args[@]}" "$template"
}

# nginx keeps root's workers as nobody, who cannot enter the private prefix.
user_line() {
  if [ "$(id -u)" = 0 ]; then echo "user $(id -un) $(id -gn);"; fi
}

# Start a private nginx named $1 serving site $2 with $3 workers; extra
# NAME=value pairs for the site. Its master's pid goes into server_pids[$1].
declare -A server_pids
start_nginx() {
  local name=$1 site=$2 workers=$3 dir=$scratch/$1
  shift 3
  mkdir -p "$dir/tmp"
  render "$here/$site" "$@" >"$dir/site.conf"
  render "$here/nginx.conf.in" "USER_LINE=$(user_line)" "WORKERS=$workers" "SITE=$dir/site.conf" \
    >"$dir/nginx.conf"
  "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" &
  pids+=($!)
  # shellcheck disable=SC2034 # used by the scripts that source this file
  server_pids[$name]=$!
}

# Wait up to 10 s for anything to answer HTTP at $1.
wait_http() {
  local i
  for ((i = 0; i < 100; i++)); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  die "nothing answers at $1"
}

# Metering check: prints the ledger's request count for sub bench, and fails
# unless it is between $1 and $2 (default: no upper bound) and every request
# the upstream answered whole was charged the canned reply's 42 output
# tokens. Rows the gateway had to estimate (a request wrk cut off when it
# stopped, at most one per connection: the allowance $2 − $1) are counted
# apart and may number no more than that allowance.
check_metering() {
  python3 - "$CLAUDEGATE_HOME/claudegate.db" "$1" "${2:-}" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
n, est, wrong = db.execute(
    "SELECT count(*), coalesce(sum(estimated), 0), coalesce(sum(estimated = 0 AND output_tokens != 42), 0)"
    " FROM usage_ledger WHERE subject = 'bench'").fetchone()
print(n)
low = int(sys.argv[2])
high = int(sys.argv[3]) if sys.argv[3] else n
ok = low <= n <= high and wrong == 0 and est <= high - low
if est or not ok:
    print(f"ledger: {n} rows for {low}..{high} answered, {est} estimated (cut off when wrk stopped),"
          f" {wrong} others without the 42 output tokens", file=sys.stderr)
    for row in db.execute("SELECT status, estimated, input_tokens, output_tokens, count(*) FROM usage_ledger"
                          " WHERE subject = 'bench' AND NOT (estimated = 0 AND output_tokens = 42)"
                          " GROUP BY 1, 2, 3, 4 LIMIT 10"):
        print(f"  status {row[0]} estimated {row[1]} in {row[2]} out {row[3]}: {row[4]} rows", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}
