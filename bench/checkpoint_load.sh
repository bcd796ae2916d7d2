#!/usr/bin/env bash
# Cold start from a safetensors checkpoint on the GPU machine, from a pack
# made by tools/pack_device.sh (as bench/torch_offload.sh):
#   bench/checkpoint_load.sh <pack> <output dir> [checkpoint_load.py args]
# e.g. --work /var/tmp/tc-ckpt (where the 5.67 GB checkpoint is written once
# and reused; default: the output dir), --pmem /mnt/pmem (a DAX directory),
# --skip-cold. Runs as root for drop_caches. The machine's python3 runs it
# (torch, transformers, accelerate, safetensors are there; nothing is
# installed); libtiercache comes from the pack with only the libraries this
# system lacks beside it. Writes <output dir>/checkpoint_load.json and .log.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pack=$(cd "$1" && pwd)
out=$2
shift 2
mkdir -p "$out"
source "$here/pack_python_env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
timeout 590 "${PYTHON:-python3}" "$here/checkpoint_load.py" --out "$out" "$@" 2>&1 | tee "$out/checkpoint_load.log"
rc=${PIPESTATUS[0]}
rm -rf "$pylib"
echo "rc=$rc"
exit "$rc"
