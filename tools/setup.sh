#!/usr/bin/env bash
# Installs what tiercache needs and is missing (Debian 12 packages; clang is
# for the fuzz targets only), then
# configures and builds it with a CMake preset (default; or TIERCACHE_PRESET=
# asan|tsan). Safe to run again: it installs nothing already there and
# rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config libhwloc-dev liburing-dev
          libpmem2-dev libtbb-dev libgtest-dev libbenchmark-dev fio
          python3-torch python3-numpy python3-pytest clang-14 libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "tiercache: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ ! -d /usr/local/cuda ]; then
  echo "tiercache: no CUDA toolkit at /usr/local/cuda; building with the emulated device only"
fi

preset=${TIERCACHE_PRESET:-default}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
