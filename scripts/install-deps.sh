#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install every Debian package the build, tests and demo need. Idempotent:
# does nothing when all are present.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git clang-format
  libssl-dev openssl libsqlite3-dev sqlite3
  libcli11-dev libfmt-dev nlohmann-json3-dev libtomlplusplus-dev libcpp-httplib-dev doctest-dev
  python3 python3-jwt python3-cryptography curl
  ccache                          # faster rebuilds (used when present)
  groff man-db zsh fish tmux      # man page lint, completion tests
  clang-16 libclang-rt-16-dev     # fuzz targets (libFuzzer); clang 14 cannot compile libstdc++ 12 <expected>
  nginx-light wrk                 # bench: reference proxy and load generator
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
