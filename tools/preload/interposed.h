// The bridge between the lookup hooks (dlsym, cuGetProcAddress,
// cudaGetDriverEntryPoint*) and the interposed functions: for a driver
// function, the library's own pointer and the slot that keeps the real one;
// for a runtime symbol name, the same.
//
// Thread safety: every function may be called from any thread.
#ifndef TIERCACHE_TOOLS_PRELOAD_INTERPOSED_H_
#define TIERCACHE_TOOLS_PRELOAD_INTERPOSED_H_

#include "tools/preload/driver_entry_points.h"
#include "tools/preload/real_symbols.h"

namespace tiercache::preload {

// The interposed function, or nullptr for kNone.
void* InterposedDriverPointer(DriverFunction function);
RealSlot* RealDriverSlot(DriverFunction function);

// For a runtime symbol this library interposes ("cudaMalloc"): the
// interposed function and its real slot; nullptr for any other name.
void* InterposedRuntimePointer(const char* symbol, RealSlot** real);

// Replaces *function with the interposed one when `name` (a base name at
// `version` with `flags`, as cuGetProcAddress takes them) is interposed,
// keeping the pointer it replaced as the real one. Does nothing when called
// from inside the library.
void SubstituteDriverEntryPoint(const char* name, int version, unsigned long long flags,
                                void** function);

}  // namespace tiercache::preload

#endif  // TIERCACHE_TOOLS_PRELOAD_INTERPOSED_H_
