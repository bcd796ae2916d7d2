#!/usr/bin/env bash
# The reliability runs CI adds to the default test suite (docs/reliability.md):
# the whole CTest suite built and run under ASan+UBSan and under TSan (every
# test that is built, GPU tests skipping without a GPU), then every fuzz
# target for a bounded time. Benchmarks are not built for these runs.
#   TIERCACHE_RELIABILITY="asan tsan fuzz"   the stages to run (default: all)
#   TIERCACHE_FUZZ_SECONDS=30                 per fuzz target
set -euo pipefail
cd "$(dirname "$0")/.."

stages=${TIERCACHE_RELIABILITY:-asan tsan fuzz}
for stage in $stages; do
  start=$(date +%s)
  case "$stage" in
    asan|tsan)
      TIERCACHE_PRESET=$stage tools/setup.sh
      ctest --preset "$stage"
      ;;
    fuzz) tools/fuzz.sh ;;
    *) echo "tiercache: unknown reliability stage '$stage' (asan, tsan, fuzz)" >&2; exit 2 ;;
  esac
  echo "tiercache: $stage passed in $(( $(date +%s) - start )) s"
done
