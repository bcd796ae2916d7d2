// Real symbols: how the preload library finds the functions it interposes.
//
// Contract
// - RealDlsym() and RealDlvsym() are the dlsym and dlvsym next after this
//   library (glibc's, unless another preloaded library wraps them too): the
//   library defines both itself, so it cannot simply call them. glibc's
//   dlvsym is read from libc's symbol table (elf_lookup.h) and asked for
//   RTLD_NEXT's definition of each, at version GLIBC_2.34 where libdl is
//   part of libc (glibc >= 2.34), GLIBC_2.2.5 before. Neither ever calls the
//   library's dlsym or dlvsym, so a lookup made while the library is
//   initialising, or from inside its own dlsym or dlvsym, cannot recurse.
// - FindRuntimeSymbol(name) is the CUDA runtime's definition of `name`: the
//   next definition after this library in the global scope (RTLD_NEXT),
//   else the one in a libcudart already loaded privately (an engine that
//   dlopened it RTLD_LOCAL, as Python extensions are loaded).
// - FindDriverSymbol(name) is the driver's: RTLD_NEXT, else a libcuda.so.1
//   already loaded. Both return nullptr when there is none.
// - RealSlot caches one symbol per name for the process: the first pointer
//   recorded (by a lookup, or by the entry-point hooks when the driver hands
//   one out) wins.
// - CallerIsCudaLibrary(address) tells whether a return address lies in
//   libcudart or libcuda (their own lookups are never redirected);
//   FromThisLibrary(address) whether it lies in this library.
//
// Thread safety: every function may be called from any thread.
#ifndef TIERCACHE_TOOLS_PRELOAD_REAL_SYMBOLS_H_
#define TIERCACHE_TOOLS_PRELOAD_REAL_SYMBOLS_H_

#include <atomic>

namespace tiercache::preload {

using DlsymFunction = void* (*)(void*, const char*);
using DlvsymFunction = void* (*)(void*, const char*, const char*);
DlsymFunction RealDlsym();
DlvsymFunction RealDlvsym();

void* FindRuntimeSymbol(const char* name);
void* FindDriverSymbol(const char* name);

enum class Library { kRuntime, kDriver };

class RealSlot {
 public:
  constexpr RealSlot(const char* name, Library library) : name_(name), library_(library) {}
  // The cached pointer, looked up on first use; nullptr when not found (the
  // lookup is retried on the next call: the library may be loaded later).
  void* Get();
  // Records `pointer` unless one is cached already.
  void Offer(void* pointer);
  const char* name() const { return name_; }

 private:
  const char* name_;
  Library library_;
  std::atomic<void*> pointer_{nullptr};
};

bool CallerIsCudaLibrary(const void* address);

// True when `address` (a return address) lies in this library's own code:
// the hosted runtime calls cudaMalloc, cudaMemcpyAsync and the entry-point
// lookups from its own threads too, and those calls must reach CUDA, not
// the pool they come from. The range is read once.
bool FromThisLibrary(const void* address);

}  // namespace tiercache::preload

#endif  // TIERCACHE_TOOLS_PRELOAD_REAL_SYMBOLS_H_
