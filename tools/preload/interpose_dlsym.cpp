// dlsym and dlvsym: engines that dlopen libcuda or libcudart and look
// functions up by name (JAX's XLA, CuPy's driver calls, the CUDA runtime of
// another copy), or by name and version (dlvsym(handle, "cudaMalloc",
// "libcudart.so.13")), never reach an LD_PRELOAD definition, so the library
// answers those lookups itself for the names it interposes.
//
// Every other lookup, and every lookup with RTLD_DEFAULT or RTLD_NEXT (whose
// answer depends on who asks: glibc reads the caller from the return
// address), is a tail call to glibc's function, so glibc sees the original
// caller. Lookups made by the CUDA runtime or driver themselves, or from
// inside this library, are never redirected. A versioned lookup is
// redirected only when it found the same function an unversioned one finds
// (the object's default version of the name): another version of a name may
// be another ABI, which the interposed function does not speak.
#include <dlfcn.h>

#include <cstring>

#include "tools/preload/interposed.h"
#include "tools/preload/preload_state.h"

namespace {

using tiercache::preload::DriverFunction;
using tiercache::preload::RealSlot;

enum class Lookup { kPlain, kVersioned };

// A lookup on `handle` found `found`: the library's function instead when
// the name is one it interposes.
void* Redirect(Lookup lookup, void* handle, const char* symbol, void* found, const void* caller) {
  if (found == nullptr || tiercache::preload::InsideLibrary()) return found;
  RealSlot* slot = nullptr;
  void* ours = nullptr;
  DriverFunction f = tiercache::preload::InterposedBySymbol(symbol);
  if (f != DriverFunction::kNone) {
    slot = tiercache::preload::RealDriverSlot(f);
    ours = tiercache::preload::InterposedDriverPointer(f);
  } else {
    ours = tiercache::preload::InterposedRuntimePointer(symbol, &slot);
  }
  // The name test is cheap; asking who the caller is (dladdr) only follows.
  if (ours == nullptr || ours == found || tiercache::preload::FromThisLibrary(caller) ||
      tiercache::preload::CallerIsCudaLibrary(caller)) {
    return found;
  }
  if (lookup == Lookup::kVersioned && tiercache::preload::RealDlsym()(handle, symbol) != found) {
    return found;  // not the default version
  }
  slot->Offer(found);
  return ours;
}

// Whether a lookup is the caller's own business: by scope (RTLD_DEFAULT,
// RTLD_NEXT), or of a name that cannot be ours (ours are "cu*").
// <dlfcn.h> declares `symbol` non-null, yet callers pass null; hide the
// pointer from the optimiser so the check stays.
inline bool PassThrough(void* handle, const char* symbol) {
  asm("" : "+r"(symbol));
  return handle == RTLD_DEFAULT || handle == RTLD_NEXT || symbol == nullptr || symbol[0] != 'c' ||
         symbol[1] != 'u';
}

}  // namespace

// Both optimised even in a debug build: the pass-through must stay a tail
// call.
extern "C" __attribute__((visibility("default"), optimize("O2"))) void* dlsym(void* handle,
                                                                             const char* symbol) {
  tiercache::preload::DlsymFunction real = tiercache::preload::RealDlsym();
  if (real == nullptr) return nullptr;
  if (PassThrough(handle, symbol)) {
    return real(handle, symbol);  // a tail call: glibc sees our caller as its caller
  }
  return Redirect(Lookup::kPlain, handle, symbol, real(handle, symbol), __builtin_return_address(0));
}

extern "C" __attribute__((visibility("default"), optimize("O2"))) void* dlvsym(void* handle,
                                                                              const char* symbol,
                                                                              const char* version) {
  tiercache::preload::DlvsymFunction real = tiercache::preload::RealDlvsym();
  if (real == nullptr) return nullptr;
  if (PassThrough(handle, symbol)) {
    return real(handle, symbol, version);  // a tail call, as in dlsym
  }
  return Redirect(Lookup::kVersioned, handle, symbol, real(handle, symbol, version),
                  __builtin_return_address(0));
}
