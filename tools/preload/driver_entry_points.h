// Driver entry points: which names, asked for through cuGetProcAddress or
// cudaGetDriverEntryPoint(ByVersion), the library answers with its own
// function instead of the driver's.
//
// CUDA 12+ engines (and the CUDA runtime itself) reach driver functions by
// name and ABI version rather than by linking libcuda, so interposing the
// exported cuMemAlloc_v2 alone catches nothing. The hooks call the real
// lookup first (its result and error code are what the caller gets), and
// only when it succeeded and the name is one below do they hand back the
// interposed function, keeping the driver's pointer as the real one.
//
// | base name        | ABI versions  | stream flavour     | interposed as        |
// | cuMemAlloc       | >= 3020       | any                | cuMemAlloc_v2        |
// | cuMemFree        | >= 3020       | any                | cuMemFree_v2         |
// | cuMemAllocAsync  | >= 11020      | legacy / per-thread| cuMemAllocAsync(_ptsz)|
// | cuMemFreeAsync   | >= 11020      | legacy / per-thread| cuMemFreeAsync(_ptsz)|
// | cuGetProcAddress | 11030..11999  | any                | cuGetProcAddress     |
// | cuGetProcAddress | >= 12000      | any                | cuGetProcAddress_v2  |
// Older versions of a name (cuMemAlloc before 3.2 took 32-bit sizes) pass
// through untouched. The default stream flavour counts as legacy (what code
// built without --default-stream per-thread gets), except in the runtime's
// per-thread lookups (cudaGetDriverEntryPoint(ByVersion)_ptsz, what code
// built with it calls), where it is per-thread.
//
// Thread safety: pure functions.
#ifndef TIERCACHE_TOOLS_PRELOAD_DRIVER_ENTRY_POINTS_H_
#define TIERCACHE_TOOLS_PRELOAD_DRIVER_ENTRY_POINTS_H_

#include <cstdint>
#include <string_view>

namespace tiercache::preload {

enum class DriverFunction {
  kNone,
  kMemAlloc,             // cuMemAlloc_v2
  kMemFree,              // cuMemFree_v2
  kMemAllocAsync,        // cuMemAllocAsync
  kMemFreeAsync,         // cuMemFreeAsync
  kMemAllocAsyncPerThread,  // cuMemAllocAsync_ptsz
  kMemFreeAsyncPerThread,   // cuMemFreeAsync_ptsz
  kGetProcAddress,       // cuGetProcAddress (v1 signature)
  kGetProcAddressV2,     // cuGetProcAddress_v2
};

// Flag bits of cuGetProcAddress / cudaGetDriverEntryPoint (equal in both).
constexpr uint64_t kLegacyStreamFlag = 1u << 0;
constexpr uint64_t kPerThreadDefaultStreamFlag = 1u << 1;

// The flags a per-thread lookup (a _ptsz entry-point export) stands for:
// with neither stream flavour asked for, the per-thread one.
uint64_t PerThreadLookupFlags(uint64_t flags);

// The interposed function for `base_name` at ABI `cuda_version` with `flags`,
// or kNone to hand back the driver's own.
DriverFunction InterposedByVersion(std::string_view base_name, int cuda_version, uint64_t flags);

// The interposed function for an exported symbol name ("cuMemAlloc_v2"), as
// dlsym sees names, or kNone.
DriverFunction InterposedBySymbol(std::string_view symbol);

// The exported symbol name of each function ("cuMemAllocAsync_ptsz").
const char* SymbolName(DriverFunction function);

}  // namespace tiercache::preload

#endif  // TIERCACHE_TOOLS_PRELOAD_DRIVER_ENTRY_POINTS_H_
