// Static CUDA runtime check: an executable linked against libcudart_static
// calls its own copy of cudaMalloc, which no LD_PRELOAD library can
// replace. The preload library checks the executable once at load and says
// so in one line rather than silently doing nothing.
//
// Contract: LinksStaticCudaRuntime(path) is true when `path` is an ELF file
// that carries the CUDA runtime's code (recognised by a string only that
// code holds, the "/cudart.shm." name format of its shared-memory
// segments) and does not itself list libcudart as a needed library; the file is mapped read-only and scanned, never executed.
// A file that cannot be read is reported as not static (nothing to say).
//
// Thread safety: a pure function of the file.
#ifndef TIERCACHE_TOOLS_PRELOAD_STATIC_RUNTIME_CHECK_H_
#define TIERCACHE_TOOLS_PRELOAD_STATIC_RUNTIME_CHECK_H_

#include <string>

namespace tiercache::preload {

bool LinksStaticCudaRuntime(const std::string& path);

}  // namespace tiercache::preload

#endif  // TIERCACHE_TOOLS_PRELOAD_STATIC_RUNTIME_CHECK_H_
