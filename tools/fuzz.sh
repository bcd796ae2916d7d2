#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang with ASan+UBSan) and
# runs each for TIERCACHE_FUZZ_SECONDS (default 30) from its committed seed
# corpus (tests/fuzz/corpus/<target>/). New inputs go to a scratch corpus,
# never into the repository. A crash stops the run with its reproducer under
# build-fuzz/artifacts/<target>/; commit that file into the target's corpus
# and fix the bug: the corpus regression test then keeps it fixed.
#   tools/fuzz.sh                 every target
#   tools/fuzz.sh fuzz_c_api      only the ones named
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${TIERCACHE_FUZZ_SECONDS:-30}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

scratch=$(mktemp -d "${TMPDIR:-/tmp}/tiercache-fuzz-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
failed=0
while read -r target corpus; do
  [ -n "$target" ] || continue
  if (($#)) && [[ " $* " != *" $target "* ]]; then continue; fi
  mkdir -p "$scratch/$target" "build-fuzz/artifacts/$target"
  echo "tiercache: fuzzing $target for ${seconds}s"
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
       "build-fuzz/fuzz/$target" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$target/" \
       "$scratch/$target" "$corpus" >"$scratch/$target.log" 2>&1; then
    tail -n 60 "$scratch/$target.log"
    echo "tiercache: $target failed; reproducer(s): $(ls "build-fuzz/artifacts/$target")"
    failed=1
  else
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$scratch/$target.log" |
      tr '\n' ' ' | sed "s/^/tiercache: $target: /"
    echo
  fi
done < build-fuzz/fuzz_targets.txt
exit $failed
