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
source "$here/pack_python_env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
timeout 570 "${PYTHON:-python3}" "$here/torch_offload_bench.py" --out "$out" "$@" 2>&1 | tee "$out/torch_offload.log"
rc=${PIPESTATUS[0]}
rm -rf "$pylib"
echo "rc=$rc"
exit "$rc"
