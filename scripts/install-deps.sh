#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install the Debian packages a command needs, and only those:
#   scripts/install-deps.sh build     compiler, CMake, Ninja and the libraries (doctest too: tests build by default)
#   scripts/install-deps.sh test      build + what the tests run: Python with PyJWT, curl, sqlite3, PostgreSQL, groff,
#                                     shells for the completion tests, clang-format, Node.js and npm
#   scripts/install-deps.sh fuzz      build + clang 16 and libFuzzer
#   scripts/install-deps.sh bench     build + nginx and wrk (the proxy benchmark's references)
#   scripts/install-deps.sh demo      build + python3 and curl
#   scripts/install-deps.sh           everything above
# Several names add up (`install-deps.sh test fuzz`). Idempotent and silent
# when everything is present; otherwise one apt-get install of what is missing.
set -euo pipefail

build=(g++ cmake ninja-build pkg-config git ccache
  libssl-dev openssl libsqlite3-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev libtomlplusplus-dev doctest-dev
  libboost1.81-dev libpq-dev libmimalloc-dev libsimdjson-dev)
test=(sqlite3 postgresql python3 python3-jwt python3-cryptography curl clang-format
  groff man-db zsh fish tmux) # man page lint, completion tests
fuzz=(clang-16 libclang-rt-16-dev) # clang 14 cannot compile libstdc++ 12's <expected>
bench=(nginx-light wrk python3 curl postgresql) # postgresql: bench/replicas
demo=(python3 curl)

usage() {
  echo "usage: scripts/install-deps.sh [build|test|fuzz|bench|demo]..." >&2
  exit 2
}

[ $# -gt 0 ] || set -- test fuzz bench demo
packages=("${build[@]}")
node=no
for command in "$@"; do
  case $command in
    build) ;;
    test)
      packages+=("${test[@]}")
      node=yes
      ;;
    fuzz) packages+=("${fuzz[@]}") ;;
    bench) packages+=("${bench[@]}") ;;
    demo) packages+=("${demo[@]}") ;;
    *) usage ;;
  esac
done

missing=()
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null || true)
for p in $(printf '%s\n' "${packages[@]}" | sort -u); do
  grep -qx "$p install ok installed" <<<"$installed" || missing+=("$p")
done
# examples/typescript-sdk (examples.t_typescript-sdk) needs node and npm. By
# command, not package: a Node.js from elsewhere (NodeSource's nodejs ships
# npm and conflicts with Debian's npm) is kept as it is.
if [ "$node" = yes ]; then
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
