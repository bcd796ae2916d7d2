#!/usr/bin/env bash
# The PyTorch benchmarks on the GPU machine, from a pack made by
# tools/pack_device.sh:
#   bench/torch_offload.sh <pack> <output dir> [torch_offload_bench.py args, e.g. --quick]
# The machine's own python3 runs them (PyTorch, transformers, accelerate are
# there; nothing is installed). The package is imported from this source
# tree. libtiercache comes from the pack with only the libraries this system
# lacks beside it: never the pack's libstdc++/libgcc_s (PyTorch needs the
# system's newer ones) nor a CUDA runtime (imported after torch, libtiercache
# shares PyTorch's). Writes <output dir>/torch_offload.json and .log.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pack=$(cd "$1" && pwd)
out=$2
shift 2
mkdir -p "$out"
pylib=$(mktemp -d)
cp -P "$pack"/lib/libtiercache.so* "$pylib"/
for _ in 1 2 3 4 5; do  # transitive dependencies surface one level per pass
  added=0
  for name in $(LD_LIBRARY_PATH="$pylib" ldd "$pylib/libtiercache.so.0" | awk '/not found/ {print $1}'); do
    case "$name" in libstdc++*|libgcc_s*|libcudart*|libcuda.*|libnv*) continue ;; esac
    if [ -e "$pack/lib/$name" ] && [ ! -e "$pylib/$name" ]; then
      cp -L "$pack/lib/$name" "$pylib/" && added=1
    fi
  done
  [ "$added" = 1 ] || break
done
echo "libraries beside libtiercache: $(cd "$pylib" && ls | grep -v '^libtiercache' | tr '\n' ' ')"
# Not the pack's lib folder, which a caller (bench/gpu_suite.sh) may have put
# on the path: it holds the build machine's libstdc++.
inherited=$(printf '%s' "${LD_LIBRARY_PATH:-}" | tr ':' '\n' | grep -vxF "$pack/lib" | paste -sd: -)
export LD_LIBRARY_PATH="$pylib${inherited:+:$inherited}"
export TIERCACHE_LIBRARY="$pylib/libtiercache.so.0"
export TIERCACHE_DEVICE=${TIERCACHE_DEVICE:-cuda}
export PYTHONPATH="$here/../python${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
timeout 570 "${PYTHON:-python3}" "$here/torch_offload_bench.py" --out "$out" "$@" 2>&1 | tee "$out/torch_offload.log"
rc=${PIPESTATUS[0]}
rm -rf "$pylib"
echo "rc=$rc"
exit "$rc"
