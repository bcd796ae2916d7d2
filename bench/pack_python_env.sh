# Sourced by the benchmark scripts that run the GPU machine's own python3
# against a pack made by tools/pack_device.sh (torch_offload.sh,
# checkpoint_load.sh). Needs $pack (the pack, absolute) and $here (bench/).
# Puts libtiercache and only the libraries this system lacks beside it in a
# temporary folder ($pylib: the caller removes it), never the pack's own
# libstdc++ (python's extension modules need the system's), and exports
# LD_LIBRARY_PATH, TIERCACHE_LIBRARY, TIERCACHE_DEVICE (cuda unless set) and
# PYTHONPATH (the package in python/).
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
