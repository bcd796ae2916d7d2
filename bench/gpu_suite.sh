#!/usr/bin/env bash
# The GPU machine's measuring session in one command, from a pack made by
# tools/pack_device.sh (that machine has no build dependencies):
#   bench/gpu_suite.sh <pack> <output dir> [steps]
# steps (default "tests alloc runtime bench-tool fio"):
#   tests       every test binary against the real device (tools/device_check.sh)
#   alloc       alloc_bench: pool vs cudaMalloc vs cudaMallocAsync, trace replay
#   runtime     runtime_bench: resident acquire/release, weight streaming vs
#               the pinned double buffer and the copy peak, half-resident step
#   streaming   runtime_bench's streaming and half-resident cases alone, with
#               a line per step (TIERCACHE_BENCH_VERBOSE=1), at 16 x 350 MiB
#               and at 8 x 350 MiB, 16 x 150 MiB and lookahead 2
#   engine      engine_bench: the C API driven like an engine (acquire ->
#               kernel -> release per layer, no hints), against a pinned
#               double buffer and the copy peak, room for 3 and budgets of
#               25/50/75% of 16 x 350 MiB layers; then again with
#               cycle_plan=false (the schedule the plan replaces)
#   bench-tool  tiercache-bench on its default workload
#   stress      tiercache-bench stress on the real device: 8 threads on 4
#               streams, every byte verified, resident memory reported
#   codec       codec_device_gpu_test (the decode kernel, bit-exact), then
#               codec_bench: ratio table, kernel decode throughput against a
#               device-to-device copy, 16 x 350 MiB streamed with and without
#               compression against the pinned copy peak, bit-exact
#   fio         bench/fio_compare.sh on the machine's local disk
#   torch       bench/torch_offload.sh: PyTorch weight and activation offload
#               against all-on-GPU, a pinned double buffer, accelerate and
#               save_on_cpu (into <output dir>/torch; not in the default steps)
#   preload     bench/preload_suite.sh: the LD_PRELOAD library on pageable
#               copies, PyTorch, CuPy and JAX (not in the default steps; its
#               logs go to <output dir>/preload)
# Logs and JSON land in <output dir> (few files: the directory is packed).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pack=$(cd "$1" && pwd)
out=$2
steps=${3:-tests alloc runtime bench-tool fio}
mkdir -p "$out"
export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$pack/bin:$PATH"
work=$(mktemp -d)

for step in $steps; do
  echo "=== $step"
  case "$step" in
    tests)
      "$here/../tools/device_check.sh" "$pack" "$out" tests | tail -n 40 ;;
    alloc)
      TIERCACHE_DEVICE=cuda timeout 300 alloc_bench --benchmark_out="$work/alloc_bench.json" \
        --benchmark_out_format=json >"$work/alloc_bench.txt" 2>&1
      grep -A12 '^summary' "$work/alloc_bench.txt" ;;
    runtime)
      TIERCACHE_DEVICE=cuda timeout 400 runtime_bench --benchmark_counters_tabular=true \
        --benchmark_out="$work/runtime_bench.json" --benchmark_out_format=json \
        >"$work/runtime_bench.txt" 2>&1
      echo "rc=$?"; tail -n 25 "$work/runtime_bench.txt" ;;
    streaming)
      for variant in "16 367001600 1" "16 367001600 2" "8 367001600 1" "16 157286400 1"; do
        read -r blocks bytes ahead <<<"$variant"
        name="streaming_${blocks}x$((bytes >> 20))MiB_ahead$ahead"
        echo "--- $name"
        TIERCACHE_DEVICE=cuda TIERCACHE_BENCH_VERBOSE=1 TIERCACHE_BENCH_STEPS=5 TIERCACHE_BENCH_BLOCKS=$blocks \
          TIERCACHE_BENCH_BLOCK_BYTES=$bytes TIERCACHE_BENCH_LOOKAHEAD=$ahead \
          timeout 200 runtime_bench --benchmark_filter='WeightStreaming|HalfResident' \
          --benchmark_counters_tabular=true >"$work/$name.txt" 2>&1
        echo "rc=$?"; grep -E '^BM_|step [0-9]' "$work/$name.txt" | cut -c1-110
      done ;;
    engine)
      TIERCACHE_DEVICE=cuda timeout 300 engine_bench --json="$work/engine_bench.json" \
        >"$work/engine_bench.txt" 2>&1
      echo "rc=$?"; cat "$work/engine_bench.txt"
      # The same without the cycle plan, the schedule it replaces.
      TIERCACHE_DEVICE=cuda timeout 300 engine_bench --config=cycle_plan=false \
        --json="$work/engine_bench_no_plan.json" >"$work/engine_bench_no_plan.txt" 2>&1
      echo "cycle_plan=false rc=$?"; cat "$work/engine_bench_no_plan.txt" ;;
    codec)
      TIERCACHE_DEVICE=cuda timeout 120 codec_device_gpu_test >"$work/codec_device_gpu_test.txt" 2>&1
      echo "codec_device_gpu_test rc=$?"; tail -n 3 "$work/codec_device_gpu_test.txt"
      TIERCACHE_DEVICE=cuda timeout 500 codec_bench >"$work/codec_bench.txt" 2>&1
      echo "codec_bench rc=$?"; cat "$work/codec_bench.txt" ;;
    bench-tool)
      (cd "$work" && timeout 120 tiercache-bench --json="$work/tiercache-bench.json" \
        >"$work/tiercache-bench.txt" 2>&1; echo "rc=$?")
      cat "$work/tiercache-bench.txt" ;;
    stress)
      (cd "$work" && TIERCACHE_DEVICE=cuda timeout 200 tiercache-bench stress --seconds=120 \
        --dir="$work" >"$work/stress.txt" 2>&1; echo "rc=$?")
      cat "$work/stress.txt" ;;
    fio)
      mkdir -p "$work/build/bench" && ln -sf "$pack/bin/tier_bench" "$work/build/bench/tier_bench"
      timeout 300 "$here/fio_compare.sh" --build "$work/build" --file "$work/fio.dat" \
        --size $((1024 * 1024 * 1024)) --bs "1048576 16777216" --qd 32 --runtime 3 --repeat 3 \
        >"$work/fio_compare.txt" 2>&1
      echo "rc=$?"; tail -n 12 "$work/fio_compare.txt"; rm -f "$work/fio.dat" ;;
    torch)
      "$here/torch_offload.sh" "$pack" "$out/torch" | grep -Ev '^(building|---)' | tail -n 60 ;;
    preload)
      "$here/preload_suite.sh" "$pack" "$out/preload" ;;
    *) echo "unknown step $step" ;;
  esac
done
tar -czf "$out/bench.tgz" -C "$work" --exclude='build' .
