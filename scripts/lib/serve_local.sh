# SPDX-License-Identifier: Apache-2.0
# Sourced by the examples, the proxy tests and the proxy benchmarks: wait for
# a `serve-local --listen 127.0.0.1:0` started in the background to report
# the port the system gave it.

# Wait up to 10 s for "serving on URL" in stderr file $1 of server pid $2;
# print the URL, or print why not on stderr and return 1.
serve_local_url() {
  local stderr=$1 pid=$2 line="" i
  for ((i = 0; i < 100; i++)); do
    line=$(grep -m1 'serving on' "$stderr" 2>/dev/null || true)
    [ -n "$line" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "serve-local exited: $(cat "$stderr")" >&2
      return 1
    fi
    sleep 0.1
  done
  if [ -z "$line" ]; then
    echo "serve-local did not start within 10 s: $(cat "$stderr")" >&2
    return 1
  fi
  echo "$line" | sed -E 's/.*serving on (http:[^ ]+).*/\1/'
}
