#!/usr/bin/env bash
# Runs on a GPU machine from a pack made by tools/pack_device.sh:
#   tools/device_check.sh <pack> <output dir> [tests|bench|all] [bench-filter]
# Every test binary runs against the real CUDA device (TIERCACHE_DEVICE=cuda),
# then the benchmarks; each writes its log to <output dir>. A summary table
# of pass/fail per binary is printed last; the logs are packed into
# <output dir>/logs.tgz (one file, so few files need to travel back).
set -uo pipefail
pack=$(cd "$1" && pwd)
final=$2
out=$(mktemp -d)
what=${3:-all}
filter=${4:-.}
mkdir -p "$final"
export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export TIERCACHE_DEVICE=cuda
export TMPDIR=${TMPDIR:-/tmp}
# Tests find their fixtures by the source path they were built from: make
# that path lead to this checkout when it differs.
src=$(cat "$pack/source_dir.txt" 2>/dev/null || true)
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "$src" ] && [ ! -e "$src" ]; then
  mkdir -p "$(dirname "$src")" && ln -s "$repo" "$src"
fi
# Tests that start another binary find it at its build-tree path.
while read -r built; do
  [ -e "$src/$built" ] && continue
  mkdir -p "$(dirname "$src/$built")" && ln -s "$pack/bin/$(basename "$built")" "$src/$built"
done <"$pack/binaries.txt" 2>/dev/null

{ nvidia-smi --query-gpu=name,pci.bus_id,memory.total,driver_version --format=csv,noheader;
  nproc; uname -r; date -u +%FT%TZ; } >"$out/machine.txt" 2>&1
cat "$out/machine.txt"

summary=()
if [ "$what" = tests ] || [ "$what" = all ]; then
  for t in "$pack"/bin/*_test; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    timeout 300 "$t" >"$out/$name.log" 2>&1
    rc=$?
    passed=$(grep -c '^\[       OK \]' "$out/$name.log")
    failed=$(grep -c '^\[  FAILED  \]' "$out/$name.log")
    skipped=$(grep -c '^\[  SKIPPED \]' "$out/$name.log")
    summary+=("$(printf '%-32s rc=%-3s ok=%-4s failed=%-3s skipped=%s' "$name" "$rc" "$passed" "$failed" "$skipped")")
    [ "$rc" -eq 0 ] || tail -n 30 "$out/$name.log"
  done
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  for b in "$pack"/bin/*_bench; do
    [ -x "$b" ] || continue
    name=$(basename "$b")
    timeout 240 "$b" --benchmark_filter="$filter" --benchmark_out="$out/$name.json" \
      --benchmark_out_format=json >"$out/$name.log" 2>&1
    summary+=("$(printf '%-32s rc=%s' "$name" "$?")")
    tail -n 40 "$out/$name.log"
  done
fi
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
tar -czf "$final/logs.tgz" -C "$out" .
