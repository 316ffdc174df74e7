# SPDX-License-Identifier: Apache-2.0
# Sourced by the hardening tests: remember secrets as they are minted, then
# require that nothing claudegate wrote contains any of them (DESIGN.md §6: no
# token, key or API key is ever logged).

SECRETS=()

# Remember access token $1: the whole token and its signature segment.
secret_token() {
  SECRETS+=("$1" "${1##*.}")
}

# Remember secret string $1 (a refresh token, an API key, …).
secret_value() {
  SECRETS+=("$1")
}

# Remember every private key under keys/ of home $1: the PEM marker and each
# line of its base64 body (any one of them leaking is a leak).
secret_keys() {
  local file line
  SECRETS+=("PRIVATE KEY")
  for file in "$1"/keys/*.pem; do
    while IFS= read -r line; do
      case "$line" in -----*) ;; *) SECRETS+=("$line") ;; esac
    done <"$file"
  done
}

# Fail when any file in "$@" contains a remembered secret; names the file,
# never the secret itself (this output is a log too).
assert_no_secrets() {
  local patterns leaks i
  [ "${#SECRETS[@]}" -gt 0 ] || fail "no secrets remembered: the check would pass vacuously"
  for i in "$@"; do [ -e "$i" ] || fail "missing output to check: $i"; done
  patterns=$(mktemp)
  printf '%s\n' "${SECRETS[@]}" >"$patterns"
  leaks=$(grep -lFf "$patterns" -- "$@" || true)
  rm -f "$patterns"
  [ -z "$leaks" ] && return 0
  for i in "${!SECRETS[@]}"; do
    if grep -qF -- "${SECRETS[$i]}" $leaks; then
      fail "$(echo $leaks) leak secret #$i (${#SECRETS[$i]} characters, starts ${SECRETS[$i]:0:6}…)"
    fi
  done
}
