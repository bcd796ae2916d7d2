#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds a C program
# against it twice, with find_package(tiercache) and with pkg-config, and
# runs both on the emulated device.
#   install_test.sh <build dir> <source dir>
set -euo pipefail
build=$1
source=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
lib=$(ls "$tmp"/prefix/lib*/libtiercache.so.0 2>/dev/null | head -n1)
[ -n "$lib" ] || { echo "no versioned libtiercache.so.0 installed"; exit 1; }
readelf -d "$lib" | grep -q 'SONAME.*libtiercache.so.0' || { echo "SONAME is not libtiercache.so.0"; exit 1; }
export TIERCACHE_DEVICE=emulated
cmake -S "$source/tests/install/consumer" -B "$tmp/consumer" -G Ninja \
      -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/configure.log"
cmake --build "$tmp/consumer" >"$tmp/build.log"
LD_LIBRARY_PATH="$(dirname "$lib")" "$tmp/consumer/consumer"
pcdir=$(dirname "$lib")/pkgconfig
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs tiercache)
cc -o "$tmp/consumer_pc" "$source/tests/install/consumer/consumer.c" $flags
LD_LIBRARY_PATH="$(dirname "$lib")" "$tmp/consumer_pc"
