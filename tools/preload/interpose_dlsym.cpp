// dlsym: engines that dlopen libcuda or libcudart and look functions up by
// name (JAX's XLA, CuPy's driver calls, the CUDA runtime of another copy)
// never reach an LD_PRELOAD definition, so the library answers those
// lookups itself for the names it interposes.
//
// Every other lookup, and every lookup with RTLD_DEFAULT or RTLD_NEXT (whose
// answer depends on who asks: glibc reads the caller from the return
// address), is a tail call to glibc's dlsym, so glibc sees the original
// caller. Lookups made by the CUDA runtime or driver themselves, or from
// inside this library, are never redirected.
#include <dlfcn.h>

#include <cstring>

#include "tools/preload/interposed.h"
#include "tools/preload/preload_state.h"

namespace {

using tiercache::preload::DriverFunction;
using tiercache::preload::RealSlot;

void* Redirect(tiercache::preload::DlsymFunction real, void* handle, const char* symbol,
               const void* caller) {
  void* found = real(handle, symbol);
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
  slot->Offer(found);
  return ours;
}

}  // namespace

// Optimised even in a debug build: the pass-through must stay a tail call.
extern "C" __attribute__((visibility("default"), optimize("O2"))) void* dlsym(void* handle,
                                                                             const char* symbol) {
  tiercache::preload::DlsymFunction real = tiercache::preload::RealDlsym();
  if (real == nullptr) return nullptr;
  // <dlfcn.h> declares `symbol` non-null, yet callers pass null; hide the
  // pointer from the optimiser so the check stays.
  asm("" : "+r"(symbol));
  if (handle == RTLD_DEFAULT || handle == RTLD_NEXT || symbol == nullptr || symbol[0] != 'c' ||
      symbol[1] != 'u') {
    return real(handle, symbol);  // a tail call: glibc sees our caller as its caller
  }
  return Redirect(real, handle, symbol, __builtin_return_address(0));
}
