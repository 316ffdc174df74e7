#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the libFuzzer targets with clang in ${BUILD_DIR:-build-fuzz} and run
# each one briefly on its seeds (generated from the shared vectors into the
# build folder, plus fuzz/seeds/<target>/) with its dictionary.
#   scripts/fuzz-smoke.sh                     CI smoke: 30000 runs (at most 60 s) per target
#   FUZZ_SECONDS=240 scripts/fuzz-smoke.sh    a longer local run, 240 s per target
#   scripts/fuzz-smoke.sh json config         only the named targets
# A crash fails the run; libFuzzer leaves the input in
# ${BUILD_DIR}/fuzz/artifacts/<target>/: save it under fuzz/regressions/<target>/
# so tests/unit/test_fuzz_regressions.cpp replays it in every build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh fuzz
build_dir=${BUILD_DIR:-build-fuzz}
cmake --preset fuzz -B "$build_dir" >/dev/null # clang 16, -O1 -gline-tables-only (CMakePresets.json)
cmake --build "$build_dir" -j "$(nproc)" --target fuzz

declare -A dict=([json]=jose [jws_decode]=jose [token_verify]=jose [auth_header]=http [sse_usage]=sse [config]=toml)
if [ -n "${FUZZ_SECONDS:-}" ]; then
  limits=(-runs=-1 "-max_total_time=$FUZZ_SECONDS")
else
  limits=(-runs=30000 -max_total_time=60)
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(base64url json jws_decode token_verify auth_header sse_usage config oauth_request)
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
for target in "${targets[@]}"; do
  out=$build_dir/fuzz
  mkdir -p "$out/corpus/$target" "$out/artifacts/$target" "$out/seeds/$target"
  args=("${limits[@]}" -timeout=10 -print_final_stats=1 "-artifact_prefix=$out/artifacts/$target/")
  [ -z "${dict[$target]:-}" ] || args+=("-dict=fuzz/dicts/${dict[$target]}.dict")
  echo "fuzz-smoke: $target" >&2
  if ! "$out/fuzz_$target" "${args[@]}" "$out/corpus/$target" "$out/seeds/$target" "fuzz/seeds/$target" \
    >"$out/$target.log" 2>&1; then
    cat "$out/$target.log" >&2
    echo "fuzz-smoke: $target crashed; save the input from $out/artifacts/$target/ under fuzz/regressions/$target/" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)|cov: ' "$out/$target.log" |
    tail -4 >&2
done
