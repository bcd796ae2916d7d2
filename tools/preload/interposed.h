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

// True in an interposed function called from inside the library: by a
// thread marked inside (LibraryScope) or by the library's own code on any
// thread (the hosted runtime's workers). Such calls go to the real function.
#define TC_FROM_INSIDE()                      \
  (::tiercache::preload::InsideLibrary() || \
   ::tiercache::preload::FromThisLibrary(__builtin_return_address(0)))

namespace tiercache::preload {

bool InsideLibrary();  // preload_state.h

// The interposed function, or nullptr for kNone.
void* InterposedDriverPointer(DriverFunction function);
RealSlot* RealDriverSlot(DriverFunction function);

// For a runtime symbol this library interposes ("cudaMalloc"): the
// interposed function and its real slot; nullptr for any other name.
void* InterposedRuntimePointer(const char* symbol, RealSlot** real);

// Replaces *function with the interposed one when `name` (a base name at
// `version` with `flags`, as cuGetProcAddress takes them) is interposed,
// keeping the pointer it replaced as the real one. The caller decides
// whether the lookup came from inside the library (then it is not called).
void SubstituteDriverEntryPoint(const char* name, int version, unsigned long long flags,
                                void** function);

}  // namespace tiercache::preload

#endif  // TIERCACHE_TOOLS_PRELOAD_INTERPOSED_H_
