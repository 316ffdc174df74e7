#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Layering: the library's layers build on the ones below them only,
# base < jose < store < proxy < apps (lib/CMakeLists.txt links them so).
# Every #include of a claudegate header in lib/<layer>/,
# lib/include/claudegate/<layer>/ and apps/ must name a layer at or below
# its own, and a quoted include of a private header must stay inside its own
# layer's folder (apps/ reaches the library through public headers only).
# A tree with one upward include must fail the same check.
set -euo pipefail
SRC=${CLAUDEGATE_SOURCE_DIR:?CLAUDEGATE_SOURCE_DIR must point at the source tree}
LAYERS=(base jose store proxy apps)

rank() {
  local i
  for i in "${!LAYERS[@]}"; do
    if [ "${LAYERS[$i]}" = "$1" ]; then
      echo "$i"
      return
    fi
  done
  echo -1
}

# Print one line per include of file $2 (in layer $1, tree $3) that breaks the order.
check_file() {
  local layer=$1 file=$2 root=$3 own target dir resolved
  own=$(rank "$layer")
  while IFS= read -r target; do
    case $target in
    claudegate/*)
      local used=${target#claudegate/}
      used=${used%%/*}
      local used_rank
      used_rank=$(rank "$used")
      if [ "$used_rank" -lt 0 ] || [ "$used_rank" -gt "$own" ]; then
        echo "${file#"$root"/}: $layer includes $target (layer ${used%.hpp})"
      fi
      ;;
    *)
      dir=$(dirname "$file")
      resolved=$(realpath -m "$dir/$target")
      local home="$root/lib/$layer"
      [ "$layer" = apps ] && home="$root/apps"
      if [[ $resolved != "$home/"* ]]; then
        echo "${file#"$root"/}: $layer includes $target, a header outside ${home#"$root"/}/"
      fi
      ;;
    esac
  done < <(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/p' "$file" |
    grep -E '^claudegate/|^[^<]*\.hpp$' | grep -vE '^(doctest|nlohmann|fmt|CLI|toml\+\+|openssl|boost)/' || true)
}

# Print every violation in tree $1.
violations() {
  local root=$1 dir layer file
  for dir in "$root"/lib/*/; do
    layer=$(basename "$dir")
    [ "$layer" = include ] && continue
    if [ "$(rank "$layer")" -lt 0 ]; then
      echo "lib/$layer/: not a layer (add it to the order in tests/docs/t_layers.sh and lib/CMakeLists.txt)"
      continue
    fi
    while IFS= read -r file; do
      check_file "$layer" "$file" "$root"
    done < <(find "$dir" "$root/lib/include/claudegate/$layer" -name '*.[ch]pp' 2>/dev/null)
  done
  while IFS= read -r file; do
    check_file apps "$file" "$root"
  done < <(find "$root/apps" -name '*.[ch]pp')
}

found=$(violations "$SRC")
if [ -n "$found" ]; then
  echo "t_layers: includes against the layer order ${LAYERS[*]}:" >&2
  echo "$found" >&2
  exit 1
fi

# The check itself must catch an upward include (base reaching proxy) and a
# reach into another layer's private headers (store into lib/proxy/).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$SRC/lib" "$SRC/apps" "$scratch/"
echo '#include "claudegate/proxy/server.hpp"' >>"$scratch/lib/base/errors.cpp"
echo '#include "../proxy/wire.hpp"' >>"$scratch/lib/store/report.cpp"
found=$(violations "$scratch")
for expected in 'lib/base/errors.cpp: base includes claudegate/proxy/server.hpp' \
  'lib/store/report.cpp: store includes ../proxy/wire.hpp'; do
  if ! grep -qF "$expected" <<<"$found"; then
    echo "t_layers: the check missed: $expected" >&2
    exit 1
  fi
done
echo "t_layers: ok"
