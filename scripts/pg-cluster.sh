#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A throwaway PostgreSQL cluster for the tests and benchmarks, from Debian's
# postgresql package (scripts/install-deps.sh test):
#   scripts/pg-cluster.sh start DIR   initdb in DIR, start on 127.0.0.1 and a free
#                                     port; prints the admin URI (a superuser
#                                     with a password, database "postgres")
#   scripts/pg-cluster.sh stop DIR    stop it (fast shutdown); DIR is left for the caller
# The server refuses to run as root: under root, DIR is given to the
# "postgres" user and the server runs as that user. Authentication is
# scram-sha-256 on 127.0.0.1 only, so the tests exercise passwords.
set -euo pipefail

usage() {
  echo "usage: scripts/pg-cluster.sh start|stop DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
command=$1
dir=$2

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg-cluster: PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb); run scripts/install-deps.sh test" >&2
  exit 3
fi

# Run a server program as the cluster's owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
      echo "pg-cluster: the postgres user cannot reach $dir (a parent folder is private); make its parents searchable (chmod o+x) or choose another DIR" >&2
      exit 1
    fi
  fi
  local password port
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  port=$(free_port)
  printf '%s\n' "$password" >"$dir/.pw"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir/.pw"
  as_owner "$bindir/initdb" -D "$dir/data" -U claudegate --pwfile="$dir/.pw" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    {
      cat "$dir/initdb.log" >&2
      exit 1
    }
  rm -f "$dir/.pw"
  # Small and fast: fsync off (a throwaway cluster), sockets in DIR only.
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || {
    cat "$dir/server.log" >&2
    exit 1
  }
  echo "postgresql://claudegate:$password@127.0.0.1:$port/postgres"
}

stop() {
  [ -d "$dir/data" ] || return 0
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

case $command in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
