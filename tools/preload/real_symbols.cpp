#include "tools/preload/real_symbols.h"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "tools/preload/elf_lookup.h"

namespace tiercache::preload {
namespace {

struct FoundLibrary {
  const char* pattern;
  void* handle = nullptr;
};

int MatchLoaded(struct dl_phdr_info* info, size_t, void* data) {
  auto* found = static_cast<FoundLibrary*>(data);
  const char* name = info->dlpi_name;
  if (name == nullptr || *name == '\0') return 0;
  const char* base = std::strrchr(name, '/');
  base = base == nullptr ? name : base + 1;
  if (std::strncmp(base, found->pattern, std::strlen(found->pattern)) != 0) return 0;
  // RTLD_NOLOAD: a handle to what is loaded already, never a new load.
  found->handle = dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
  return found->handle != nullptr ? 1 : 0;
}

void* FromLoadedLibrary(const char* pattern, const char* name) {
  FoundLibrary found{pattern};
  dl_iterate_phdr(MatchLoaded, &found);
  if (found.handle == nullptr) return nullptr;
  void* symbol = RealDlsym()(found.handle, name);
  dlclose(found.handle);  // drops the reference NOLOAD took; the library stays
  return symbol;
}

// glibc's dlvsym, from libc's own table (libdl's before glibc 2.34).
DlvsymFunction GlibcDlvsym() {
  static std::atomic<DlvsymFunction> cached{nullptr};
  DlvsymFunction f = cached.load(std::memory_order_acquire);
  if (f != nullptr) return f;
  f = reinterpret_cast<DlvsymFunction>(LookUpLoadedDefinition("dlvsym", "GLIBC_2.34"));
  if (f == nullptr) f = reinterpret_cast<DlvsymFunction>(LookUpLoadedDefinition("dlvsym", "GLIBC_2.2.5"));
  cached.store(f, std::memory_order_release);
  return f;
}

// The definition of one of libdl's functions next after this library, as
// dlvsym(RTLD_NEXT, ...) called from here sees it.
template <typename F>
F NextDlFunction(std::atomic<F>& cached, const char* name) {
  F f = cached.load(std::memory_order_acquire);
  if (f != nullptr) return f;
  DlvsymFunction glibc = GlibcDlvsym();
  if (glibc == nullptr) return nullptr;
  f = reinterpret_cast<F>(glibc(RTLD_NEXT, name, "GLIBC_2.34"));
  if (f == nullptr) f = reinterpret_cast<F>(glibc(RTLD_NEXT, name, "GLIBC_2.2.5"));
  cached.store(f, std::memory_order_release);
  return f;
}

}  // namespace

DlsymFunction RealDlsym() {
  static std::atomic<DlsymFunction> cached{nullptr};
  return NextDlFunction(cached, "dlsym");
}

DlvsymFunction RealDlvsym() {
  static std::atomic<DlvsymFunction> cached{nullptr};
  return NextDlFunction(cached, "dlvsym");
}

void* FindRuntimeSymbol(const char* name) {
  DlsymFunction real = RealDlsym();
  if (real == nullptr) return nullptr;
  if (void* next = real(RTLD_NEXT, name)) return next;
  return FromLoadedLibrary("libcudart.so", name);
}

void* FindDriverSymbol(const char* name) {
  DlsymFunction real = RealDlsym();
  if (real == nullptr) return nullptr;
  if (void* next = real(RTLD_NEXT, name)) return next;
  return FromLoadedLibrary("libcuda.so", name);
}

void* RealSlot::Get() {
  void* p = pointer_.load(std::memory_order_acquire);
  if (p != nullptr) return p;
  p = library_ == Library::kRuntime ? FindRuntimeSymbol(name_) : FindDriverSymbol(name_);
  if (p != nullptr) Offer(p);
  return pointer_.load(std::memory_order_acquire);
}

void RealSlot::Offer(void* pointer) {
  if (pointer == nullptr) return;
  void* expected = nullptr;
  pointer_.compare_exchange_strong(expected, pointer, std::memory_order_acq_rel);
}

namespace {

struct CodeRange {
  uintptr_t begin = 0, end = 0;
};

struct RangeSearch {
  uintptr_t base;
  CodeRange range;
};

int FindOwnRange(struct dl_phdr_info* info, size_t, void* data) {
  auto* search = static_cast<RangeSearch*>(data);
  if (info->dlpi_addr != search->base) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& p = info->dlpi_phdr[i];
    if (p.p_type != PT_LOAD || (p.p_flags & PF_X) == 0) continue;
    uintptr_t begin = info->dlpi_addr + p.p_vaddr;
    if (search->range.begin == 0 || begin < search->range.begin) search->range.begin = begin;
    search->range.end = std::max<uintptr_t>(search->range.end, begin + p.p_memsz);
  }
  return 1;
}

CodeRange OwnCodeRange() {
  Dl_info info;
  RangeSearch search{0, {}};
  if (dladdr(reinterpret_cast<void*>(&FindOwnRange), &info) != 0) {
    search.base = reinterpret_cast<uintptr_t>(info.dli_fbase);
    dl_iterate_phdr(FindOwnRange, &search);
  }
  return search.range;
}

}  // namespace

bool FromThisLibrary(const void* address) {
  static const CodeRange range = OwnCodeRange();
  auto a = reinterpret_cast<uintptr_t>(address);
  return a >= range.begin && a < range.end;
}

bool CallerIsCudaLibrary(const void* address) {
  Dl_info info;
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return false;
  const char* base = std::strrchr(info.dli_fname, '/');
  base = base == nullptr ? info.dli_fname : base + 1;
  return std::strncmp(base, "libcudart.so", 12) == 0 || std::strncmp(base, "libcuda.so", 10) == 0;
}

}  // namespace tiercache::preload
