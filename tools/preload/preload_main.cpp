// The library's load-time work, its exit report, and the functions it
// exports besides the interposed ones (include/tiercache/preload.h).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tiercache/preload.h"
#include "tiercache/tiercache.h"
#include "tools/preload/preload_state.h"
#include "tools/preload/static_runtime_check.h"

namespace {

using tiercache::preload::Api;
using tiercache::preload::LibraryScope;
using tiercache::preload::PreloadState;

void AtExit() {
  PreloadState& s = PreloadState::Get();
  if (s.trace() != nullptr) s.trace()->Flush();
  if (s.options().report && s.SawCalls()) std::fputs(s.Report().c_str(), stderr);
}

// Runs when the library is loaded (before main under LD_PRELOAD). No CUDA
// call happens here: the pool opens on the first call that needs it.
__attribute__((constructor)) void OnLoad() {
  LibraryScope scope;
  PreloadState& s = PreloadState::Get();
  if (tiercache::preload::LinksStaticCudaRuntime("/proc/self/exe")) {
    s.SetStaticRuntime(true);
    std::fprintf(stderr,
                 "tiercache preload: this program links the static CUDA runtime "
                 "(libcudart_static); its CUDA calls cannot be interposed, so the library does "
                 "nothing here (link with -cudart shared)\n");
  }
  std::atexit(AtExit);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* tiercache_torch_alloc(ssize_t size, int device, void* stream) {
  if (size <= 0) return nullptr;
  LibraryScope scope;
  PreloadState& s = PreloadState::Get();
  const char* why = "";
  tiercache::DeviceAllocator* pool = device == s.device_ordinal() ? s.Pool(&why) : nullptr;
  if (pool == nullptr) {
    s.PassedThrough(Api::kTorchAlloc, static_cast<uint64_t>(size), -1,
                    device == s.device_ordinal() ? why : "not the served device");
    return nullptr;
  }
  tiercache::Result<void*> p = pool->Allocate(static_cast<uint64_t>(size), stream);
  if (!p.ok()) {
    s.PassedThrough(Api::kTorchAlloc, static_cast<uint64_t>(size), -1, "the pool refused the request");
    return nullptr;
  }
  s.Adopt(p.value(), static_cast<uint64_t>(size), Api::kTorchAlloc);
  return p.value();
}

__attribute__((visibility("default"))) void tiercache_torch_free(void* ptr, ssize_t size, int device,
                                                                 void* stream) {
  if (ptr == nullptr) return;
  LibraryScope scope;
  PreloadState& s = PreloadState::Get();
  const char* why = "";
  tiercache::DeviceAllocator* pool = s.Owns(ptr) ? s.Pool(&why) : nullptr;
  if (pool == nullptr || !s.Release(ptr, Api::kTorchFree)) {
    s.CountInvalidFree();
    return;
  }
  (void)pool->Free(ptr, s.FreeStream(stream));
}

__attribute__((visibility("default"))) int tiercache_preload_runtime(tiercache_runtime** out) {
  if (out == nullptr) return TIERCACHE_ERR_INVALID_ARGUMENT;
  LibraryScope scope;
  const char* why = "";
  *out = PreloadState::Get().RuntimeHandle(&why);
  return *out != nullptr ? TIERCACHE_OK : TIERCACHE_ERR_UNAVAILABLE;
}

__attribute__((visibility("default"))) int tiercache_preload_stats_json(char* buffer, size_t size,
                                                                        size_t* needed) {
  if (buffer == nullptr && size != 0) return TIERCACHE_ERR_INVALID_ARGUMENT;
  std::string text;
  try {
    LibraryScope scope;
    text = PreloadState::Get().StatsJson();
  } catch (...) {
    return TIERCACHE_ERR_INTERNAL;
  }
  if (needed != nullptr) *needed = text.size() + 1;
  if (buffer == nullptr || size == 0) return TIERCACHE_ERR_OUT_OF_SPACE;
  size_t n = std::min(size - 1, text.size());
  std::memcpy(buffer, text.data(), n);
  buffer[n] = '\0';
  return n < text.size() ? TIERCACHE_ERR_OUT_OF_SPACE : TIERCACHE_OK;
}

}  // extern "C"
