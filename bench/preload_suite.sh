#!/usr/bin/env bash
# The preload library on real engines, in one command from a pack made by
# tools/pack_device.sh (the GPU machine has no build dependencies):
#   bench/preload_suite.sh <pack> <output dir> [steps]
# steps (default "tests copies torch pluggable cupy jax"):
#   tests      preload_test and preload_parts_test against the real device
#   copies     pageable_copy (cudaMemcpy from malloc'd memory, 64 MiB..4 GiB)
#              plain and under LD_PRELOAD: GB/s, ratio, verdict (>= 3x, stretch 5x)
#   torch      a transformers Llama (16 layers, random weights from a seed):
#              model.to("cuda") from pageable memory, forward, generate 32
#              tokens, plain and under LD_PRELOAD: identical logits and
#              tokens, to("cuda") time ratio
#   pluggable  the same model with PyTorch's own allocator and with
#              CUDAPluggableAllocator(libtiercache_preload.so): identical
#              outputs, ms per token and peak reserved memory side by side
#   cupy       a pool-heavy CuPy workload with its default pool, no pool and
#              its async pool, plain and under LD_PRELOAD
#   jax        a jitted JAX workload with XLA's default (BFC) allocator and
#              its platform allocator, plain and under LD_PRELOAD, with XLA's
#              deterministic ops and no autotuning (see jax-repeat) so the
#              checksums can judge the library (JAX_ALLOCATORS=platform: that one)
#   jax-repeat the JAX workload (default allocator) plain twice with the same
#              seed, then under LD_PRELOAD; once as XLA runs by default and
#              once with its deterministic ops and no autotuning
#              (--deterministic), where two plain runs must agree bit for bit
#              and so the preloaded run must too (not in the default steps)
# One "verdict:" line per comparison; logs and RESULT JSON lines land in
# <output dir> (and preload.tgz there).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pack=$(cd "$1" && pwd)
out=$2
steps=${3:-tests copies torch pluggable cupy jax}
mkdir -p "$out"
out=$(cd "$out" && pwd)
lib="$pack/lib/libtiercache_preload.so"
python=${PYTHON:-python3}
engines="$here/preload_engines.py"

# The tests find the probes at their build-tree paths (as in device_check.sh).
src=$(cat "$pack/source_dir.txt" 2>/dev/null || true)
if [ -n "$src" ]; then
  while read -r built; do
    [ -e "$src/$built" ] && continue
    mkdir -p "$(dirname "$src/$built")" && ln -s "$pack/bin/$(basename "$built")" "$src/$built"
  done <"$pack/binaries.txt" 2>/dev/null
fi

# Python processes keep the system's libstdc++ and the engine's own CUDA
# runtime: their library path holds only the preload library and the
# Debian libraries this system lacks, then the directory of PyTorch's
# libcudart.so.13 (so the library and PyTorch share one runtime).
pylib="$out/pylib"
mkdir -p "$pylib"
for f in "$pack"/lib/*.so*; do
  name=$(basename "$f")
  case "$name" in libstdc++*|libgcc_s*|libcudart*) continue ;; esac
  case "$name" in libtiercache*) ln -sf "$f" "$pylib/$name"; continue ;; esac
  ldconfig -p | grep -q "^[[:space:]]*$name " || ln -sf "$f" "$pylib/$name"
done
cudart_dir=$("$python" - <<'PY' 2>/dev/null
import glob, importlib.util, os
spec = importlib.util.find_spec("torch")
if spec:
    site = os.path.dirname(os.path.dirname(spec.origin))
    hits = sorted(glob.glob(site + "/nvidia/**/libcudart.so.13", recursive=True))
    if hits: print(os.path.dirname(hits[0]))
PY
)
echo "python runtime: ${cudart_dir:-none found}; python library dir: $(ls "$pylib" | tr '\n' ' ')"
pyenv=(env "LD_LIBRARY_PATH=$pylib${cudart_dir:+:$cudart_dir}")

# py <log name> [LD_PRELOAD=...] -- engine args: runs one engine process,
# keeps its log, prints its RESULT line.
py() {
  local name=$1; shift
  local pre=()
  if [ "$1" = preload ]; then pre=("LD_PRELOAD=$lib"); fi
  shift
  timeout 300 "${pyenv[@]}" "${pre[@]}" TIERCACHE_REPORT=1 "$python" "$engines" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  grep '^RESULT ' "$out/$name.log" | tail -n 1 | cut -c8- >"$out/$name.json"
  [ -s "$out/$name.json" ] || { echo "$name: rc=$rc, no result"; tail -n 15 "$out/$name.log"; }
}

# compare <label> <plain json> <other json> <keys that must match...>
compare() {
  "$python" - "$@" <<'PY'
import json, sys
label, a_path, b_path, *keys = sys.argv[1:]
try:
    a, b = json.load(open(a_path)), json.load(open(b_path))
except Exception as e:
    print(f"verdict: {label}: FAIL (no result: {e})"); sys.exit(0)
diff = [k for k in keys if a.get(k) != b.get(k)]
calls = b.get("preload_calls") or {}
served = {k: v["served"] for k, v in calls.items() if v["served"]}
passed = {k: v["passed_through"] for k, v in calls.items() if v["passed_through"]}
extra = ""
if "to_cuda_s" in a and "to_cuda_s" in b:
    ratio = a['to_cuda_s'] / b['to_cuda_s']
    extra += (f"; to(cuda) {a['weight_bytes']/1e9:.2f} GB: {a['to_cuda_s']:.3f} s ({a['to_cuda_gbps']} GB/s) -> "
              f"{b['to_cuda_s']:.3f} s ({b['to_cuda_gbps']} GB/s) = {ratio:.2f}x")
    if "LD_PRELOAD" in label:
        extra += f" ({'meets' if ratio >= 3 else 'misses'} the 3x target)"
if a.get("to_cuda_breakdown") and b.get("to_cuda_breakdown"):
    x, y = a["to_cuda_breakdown"], b["to_cuda_breakdown"]
    extra += (f"; alone: allocations {x['alloc_s']:.3f} -> {y['alloc_s']:.3f} s, copies {x['copy_s']:.3f} s "
              f"({x['copy_gbps']} GB/s) -> {y['copy_s']:.3f} s ({y['copy_gbps']} GB/s)")
if "ms_per_token" in a and "ms_per_token" in b:
    extra += f"; ms/token {a['ms_per_token']} -> {b['ms_per_token']}"
if a.get("peak_reserved_bytes") and b.get("peak_reserved_bytes"):
    extra += f"; peak reserved {a['peak_reserved_bytes']/2**30:.2f} -> {b['peak_reserved_bytes']/2**30:.2f} GiB"
if "seconds" in a and "seconds" in b:
    extra += f"; {a['seconds']} s -> {b['seconds']} s"
if a.get("magnitude") and b.get("magnitude"):
    extra += f"; sum |outputs| relative difference {abs(a['magnitude'] - b['magnitude']) / a['magnitude']:.2e}"
if b.get("static_runtime_modules"):
    extra += f"; static CUDA runtime in {','.join(b['static_runtime_modules'])}"
if "preload_pool_active" in b:
    extra += f"; pool active {b['preload_pool_active']} {b.get('preload_reason','')}".rstrip()
ok = "PASS" if not diff else "FAIL (differs: " + ",".join(diff) + ")"
print(f"verdict: {label}: outputs {ok}{extra}; served {served or 'nothing'}; passed through {passed or 'nothing'}")
PY
}

for step in $steps; do
  echo "=== $step"
  case "$step" in
    tests)
      for t in preload_test preload_parts_test; do
        LD_LIBRARY_PATH="$pack/lib" timeout 300 "$pack/bin/$t" >"$out/$t.log" 2>&1
        echo "$t rc=$? $(grep -c '^\[       OK \]' "$out/$t.log") ok, $(grep -c '^\[  FAILED  \]' "$out/$t.log") failed"
        grep '^\[  FAILED  \]' "$out/$t.log" | head -n 10
      done ;;
    copies)
      LD_LIBRARY_PATH="$pack/lib" timeout 300 "$pack/bin/pageable_copy" >"$out/copies_plain.txt" 2>&1
      LD_LIBRARY_PATH="$pack/lib" LD_PRELOAD="$lib" TIERCACHE_REPORT=1 timeout 300 "$pack/bin/pageable_copy" \
        >"$out/copies_preload.txt" 2>"$out/copies_preload.err"
      "$python" - "$out/copies_plain.txt" "$out/copies_preload.txt" <<'PY'
import sys
def read(path):
    rows = {}
    for line in open(path):
        parts = line.split()
        if len(parts) == 3: rows[(parts[0], int(parts[1]))] = float(parts[2])
        if len(parts) == 2 and parts[0] == "verified": rows["verified"] = parts[1]
    return rows
plain, pre = read(sys.argv[1]), read(sys.argv[2])
print(f"{'call':16} {'bytes':>12} {'plain GB/s':>11} {'preload GB/s':>13} {'ratio':>7}")
worst = None
for key in sorted(k for k in plain if isinstance(k, tuple)):
    if key not in pre: continue
    ratio = pre[key] / plain[key] if plain[key] else 0
    print(f"{key[0]:16} {key[1]:>12} {plain[key]:>11.2f} {pre[key]:>13.2f} {ratio:>7.2f}")
    if key[0].startswith("pageable"): worst = ratio if worst is None else min(worst, ratio)
ok = worst is not None and worst >= 3 and plain.get("verified") == "1" and pre.get("verified") == "1"
print(f"verdict: pageable copies: {'PASS' if ok else 'FAIL'} (worst ratio {worst if worst is None else round(worst, 2)}x, "
      f"target 3x, stretch 5x: {'met' if worst and worst >= 5 else 'not met'}; verified plain={plain.get('verified')} preload={pre.get('verified')})")
PY
      grep -A8 'tiercache preload report' "$out/copies_preload.err" ;;
    torch)
      py torch_plain plain torch
      py torch_preload preload torch
      compare "torch under LD_PRELOAD" "$out/torch_plain.json" "$out/torch_preload.json" logits_sha tokens ;;
    pluggable)
      [ -s "$out/torch_plain.json" ] || py torch_plain plain torch
      py torch_pluggable plain torch --pluggable "$pylib/libtiercache_preload.so"
      compare "torch pluggable allocator vs PyTorch's own" "$out/torch_plain.json" "$out/torch_pluggable.json" \
        logits_sha tokens ;;
    cupy)
      for pool in default none async; do
        py "cupy_${pool}_plain" plain cupy --pool "$pool"
        py "cupy_${pool}_preload" preload cupy --pool "$pool"
        compare "cupy pool=$pool under LD_PRELOAD" "$out/cupy_${pool}_plain.json" "$out/cupy_${pool}_preload.json" checksum
      done ;;
    jax)
      for allocator in ${JAX_ALLOCATORS:-default platform}; do
        py "jax_${allocator}_plain" plain jax --allocator "$allocator" --deterministic
        py "jax_${allocator}_preload" preload jax --allocator "$allocator" --deterministic
        compare "jax allocator=$allocator under LD_PRELOAD" "$out/jax_${allocator}_plain.json" \
          "$out/jax_${allocator}_preload.json" checksum
      done ;;
    jax-repeat)
      for mode in default deterministic; do
        flag=""; [ "$mode" = deterministic ] && flag="--deterministic"
        py "jax_${mode}_plain1" plain jax $flag
        py "jax_${mode}_plain2" plain jax $flag
        compare "jax $mode plain run to run" "$out/jax_${mode}_plain1.json" "$out/jax_${mode}_plain2.json" checksum
        py "jax_${mode}_preload" preload jax $flag
        compare "jax $mode under LD_PRELOAD" "$out/jax_${mode}_plain1.json" "$out/jax_${mode}_preload.json" checksum
      done ;;
    *) echo "unknown step $step" ;;
  esac
done
tar -czf "$out/preload.tgz" -C "$out" --exclude=pylib --exclude=preload.tgz . 2>/dev/null
