#!/usr/bin/env bash
# Builds tiercache with CUDA and packs what a GPU machine without the build
# dependencies needs to run the tests and benchmarks: every test, benchmark
# and tool binary, plus the shared libraries they load that are not part of
# glibc or the NVIDIA driver. The result goes to .device-pack/ (git-ignored).
#
# Binaries are stripped of debug information and their static symbol tables
# (the pack travels, and a device run may carry at most 64 MiB; the dynamic
# symbols the preload tests look up stay).
#   TIERCACHE_PACK_BUILD=build   pack an existing CUDA build instead (not rebuilt
#                                here beyond what changed)
#   TIERCACHE_PACK_DIR=dir       where the pack goes (default .device-pack)
#
# On the GPU machine:  tools/device_check.sh .device-pack <output dir>
# (with only the archive carried: tar -xJf .device-pack.tar.xz first)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${TIERCACHE_PACK_BUILD:-build-device}
pack=${TIERCACHE_PACK_DIR:-.device-pack}

if [ -z "${TIERCACHE_PACK_BUILD:-}" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTIERCACHE_WITH_CUDA=ON >/dev/null
fi
cmake --build "$build" -j"$(nproc)"

rm -rf "$pack"
mkdir -p "$pack/bin" "$pack/lib"
mapfile -t binaries < <(find "$build/tests" "$build/bench" "$build/tools" -maxdepth 2 -type f -perm -u+x \
                          ! -name '*.so*' ! -name '*.sh' 2>/dev/null | sort)
for b in "${binaries[@]}"; do
  file -b "$b" | grep -q ELF || continue
  cp "$b" "$pack/bin/"
  strip --strip-all "$pack/bin/$(basename "$b")"
  echo "$b" >>"$pack/binaries.txt"   # where tests that run other binaries look for them
done
for lib in $(find "$build" -name 'libtiercache*.so*' 2>/dev/null); do cp -P "$lib" "$pack/lib/"; done
# fio (the NVMe peer) only with TIERCACHE_PACK_FIO=1: its storage plugins pull
# in about 75 MB of libraries.
if [ "${TIERCACHE_PACK_FIO:-0}" = 1 ] && command -v fio >/dev/null; then
  cp "$(command -v fio)" "$pack/bin/"
fi

# Shared libraries: everything ldd resolves except glibc's own and the driver.
skip='/(libc|libm|libdl|librt|libpthread|ld-linux-x86-64|libcuda|libnvidia-[a-z-]*)\.so'
for b in "$pack"/bin/* "$pack"/lib/*; do
  ldd "$b" 2>/dev/null | awk '/=> \// {print $3}'
done | sort -u | grep -Ev "$skip" | grep -v '/libtiercache' | while read -r lib; do
  cp -L "$lib" "$pack/lib/"
done
# After the copies above (cp -L through a link would bring the unstripped
# library back).
find "$pack/lib" -name 'libtiercache*.so*' -type f -exec strip --strip-debug {} +
pwd >"$pack/source_dir.txt"
du -sh "$pack"
# The pack compressed (about a sixth of its size) for runs that carry at
# most 64 MiB: carry "$pack.tar.xz" and start with  tar -xJf .device-pack.tar.xz
tar -cJf "$pack.tar.xz" -C "$(dirname "$pack")" "$(basename "$pack")"
echo "compressed: $(du -sh "$pack.tar.xz" | cut -f1) in $pack.tar.xz"
echo "packed $(ls "$pack/bin" | wc -l) binaries and $(ls "$pack/lib" | wc -l) libraries into $pack"
