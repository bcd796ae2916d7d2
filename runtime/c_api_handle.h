// The C API's runtime handle, shared with the one other place that makes
// handles: the preload library, which hands its hosted runtime to C callers
// (tiercache_preload_runtime in include/tiercache/preload.h).
//
// A borrowed handle belongs to whoever made it: tiercache_close refuses it
// (TIERCACHE_ERR_INVALID_ARGUMENT), since its runtime also serves the
// allocations the preload library intercepts.
//
// Thread safety: as the C API.
#ifndef TIERCACHE_RUNTIME_C_API_HANDLE_H_
#define TIERCACHE_RUNTIME_C_API_HANDLE_H_

#include <memory>

#include "runtime/runtime.h"

struct tiercache_runtime {
  std::unique_ptr<tiercache::Runtime> runtime;
  bool borrowed = false;
};

#endif  // TIERCACHE_RUNTIME_C_API_HANDLE_H_
