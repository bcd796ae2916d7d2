#!/usr/bin/env bash
# Runs the NVMe tier (io_uring engine) and fio (ioengine=io_uring, direct=1)
# on the same file, block size and queue depth, alternating the two so they
# share whatever else the machine is doing, and prints both throughputs and
# the ratio tiercache/fio. The tiercache side is tier_bench's
# nvme_queued/<rw>/uring/bs:<bs>/qd:<qd> benchmark: <qd> requests of <bs>
# bytes always in flight over the whole file, each completion issuing the
# next, as fio does.
#
# usage: bench/fio_compare.sh [--build DIR] [--file PATH] [--size BYTES]
#            [--bs "65536 1048576"] [--qd 32] [--runtime SECONDS]
#            [--repeat N] [--rw "write read"] [--keep]
# The reported figure for each side is the median of the N runs.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${TIERCACHE_BUILD_DIR:-$here/../build}"
file="${TMPDIR:-/tmp}/tiercache-fio-compare.dat"
size=$((1024 * 1024 * 1024))
block_sizes="65536 1048576"
queue_depth=32
runtime=5
repeat=3
modes="write read"
keep=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --file) file="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --bs) block_sizes="$2"; shift 2 ;;
    --qd) queue_depth="$2"; shift 2 ;;
    --runtime) runtime="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --rw) modes="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "fio_compare: unknown argument $1" >&2; exit 2 ;;
  esac
done

bench="$build/bench/tier_bench"
[[ -x "$bench" ]] || { echo "fio_compare: $bench not built (cmake --build $build --target tier_bench)" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio_compare: fio not installed (apt-get install fio)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "fio_compare: python3 is needed to read the JSON reports" >&2; exit 1; }
if (( size % (64 * 1024 * 1024) != 0 )); then
  echo "fio_compare: --size must be a multiple of 64 MiB (the benchmark's working-set unit)" >&2
  exit 2
fi
[[ $keep -eq 1 ]] || trap 'rm -f "$file"' EXIT

# Every block written once, so neither side reads unwritten extents.
fio --name=layout --filename="$file" --size="$size" --bs=1M --rw=write --direct=1 \
    --ioengine=io_uring --iodepth=8 --output-format=terse >/dev/null

json_field() {  # json_field <python expression over `d`>
  python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

run_tiercache() {  # <rw> <bs>
  TIERCACHE_BENCH_NVME_FILE="$file" TIERCACHE_BENCH_BYTES="$size" "$bench" \
      --benchmark_filter="^nvme_queued/$1/uring/bs:$2/qd:$queue_depth/" \
      --benchmark_min_time="$runtime" --benchmark_format=json 2>/dev/null |
    json_field "int(d['benchmarks'][0]['bytes_per_second'])"
}

run_fio() {  # <rw> <bs>
  fio --name=fio_compare --filename="$file" --size="$size" --bs="$2" --rw="$1" --direct=1 \
      --ioengine=io_uring --iodepth="$queue_depth" --time_based --runtime="$runtime" \
      --output-format=json 2>/dev/null |
    json_field "int(d['jobs'][0]['$1']['bw_bytes'])"
}

median() { tr ' ' '\n' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "file=$file size=$size qd=$queue_depth runtime=${runtime}s repeat=$repeat"
echo "host: $(nproc) CPUs, $(uname -r), $(date -u +%Y-%m-%d)"
printf '%-6s %10s %16s %16s %8s\n' rw bs tiercache_MB/s fio_MB/s ratio
for rw in $modes; do
  for bs in $block_sizes; do
    ours=() theirs=()
    for ((i = 0; i < repeat; i++)); do
      if (( i % 2 == 0 )); then
        ours+=("$(run_tiercache "$rw" "$bs")"); theirs+=("$(run_fio "$rw" "$bs")")
      else
        theirs+=("$(run_fio "$rw" "$bs")"); ours+=("$(run_tiercache "$rw" "$bs")")
      fi
    done
    a=$(echo "${ours[*]}" | median)
    b=$(echo "${theirs[*]}" | median)
    awk -v rw="$rw" -v bs="$bs" -v a="$a" -v b="$b" 'BEGIN {
      printf "%-6s %10d %16.1f %16.1f %8.3f\n", rw, bs, a / 1e6, b / 1e6, a / b }'
    echo "  runs tiercache: ${ours[*]}  fio: ${theirs[*]}" >&2
  done
done
