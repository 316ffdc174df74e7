# SPDX-License-Identifier: Apache-2.0
# Sourced by scripts/test.sh and scripts/test-sanitize.sh: start a throwaway
# PostgreSQL cluster (scripts/pg-cluster.sh) for the run and export its admin
# URI as CLAUDEGATE_TEST_POSTGRES; the tests of the PostgreSQL backend create
# a database of their own in it. Stopped and removed when the shell exits.
# Without a server (not installed, cannot start), the variable stays unset:
# those tests then skip and say why, or fail when CI is set.

start_test_postgres() {
  [ -n "${CLAUDEGATE_TEST_POSTGRES:-}" ] && return 0 # the caller brought a server
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/claudegate-pg.XXXXXX")
  chmod 711 "$dir" # the server runs as "postgres" under root
  trap "scripts/pg-cluster.sh stop '$dir/cluster'; rm -rf '$dir'" EXIT
  local uri
  if uri=$(scripts/pg-cluster.sh start "$dir/cluster"); then
    export CLAUDEGATE_TEST_POSTGRES=$uri
  elif [ -n "${CI:-}" ]; then
    echo "test: could not start the PostgreSQL test cluster (above); CI needs it" >&2
    return 1
  else
    echo "test: no PostgreSQL test cluster (above): the PostgreSQL backend's tests will skip" >&2
  fi
}
