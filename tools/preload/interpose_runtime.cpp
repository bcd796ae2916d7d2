// The CUDA runtime functions the library interposes, in both flavours the
// runtime exports: the legacy one, and the per-thread-default-stream one
// that code built with --default-stream per-thread (or
// CUDA_API_PER_THREAD_DEFAULT_STREAM) calls through <cuda_runtime_api.h>'s
// macros (cudaMemcpy_ptds, cudaMemcpyAsync_ptsz, cudaMallocAsync_ptsz,
// cudaFreeAsync_ptsz, cudaMallocFromPoolAsync_ptsz and the _ptsz entry-point
// lookups). One implementation serves both flavours, which differ only in
// what a null stream means. Each is defined unversioned, so it satisfies the
// versioned references engines carry (PyTorch's libc10_cuda imports
// cudaMalloc@libcudart.so.13) as well as plain ones; the real function is
// the runtime's own export of the same name (real_symbols.h).
#include <cuda_runtime_api.h>

#include <cstring>

// cudaGetDriverEntryPoint is deprecated in CUDA 13 but still exported and
// still called by engines built against CUDA 12; it is interposed as well.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include "common/status.h"
#include "tools/preload/interposed.h"
#include "tools/preload/preload_state.h"

// <cuda_runtime_api.h> declares the per-thread exports only to code built
// with CUDA_API_PER_THREAD_DEFAULT_STREAM (its macros rename the legacy
// declarations); their signatures are the legacy ones.
extern "C" {
decltype(cudaMemcpy) cudaMemcpy_ptds;
decltype(cudaMemcpyAsync) cudaMemcpyAsync_ptsz;
decltype(cudaMallocAsync) cudaMallocAsync_ptsz;
decltype(cudaFreeAsync) cudaFreeAsync_ptsz;
decltype(cudaMallocFromPoolAsync) cudaMallocFromPoolAsync_ptsz;
decltype(cudaGetDriverEntryPoint) cudaGetDriverEntryPoint_ptsz;
decltype(cudaGetDriverEntryPointByVersion) cudaGetDriverEntryPointByVersion_ptsz;
}

namespace {

using tiercache::ErrorCode;
using tiercache::Result;
using tiercache::preload::Api;
using tiercache::preload::InsideLibrary;
using tiercache::preload::Library;
using tiercache::preload::LibraryScope;
using tiercache::preload::PreloadState;
using tiercache::preload::RealSlot;

RealSlot real_malloc{"cudaMalloc", Library::kRuntime};
RealSlot real_free{"cudaFree", Library::kRuntime};
RealSlot real_malloc_async{"cudaMallocAsync", Library::kRuntime};
RealSlot real_malloc_async_ptsz{"cudaMallocAsync_ptsz", Library::kRuntime};
RealSlot real_free_async{"cudaFreeAsync", Library::kRuntime};
RealSlot real_free_async_ptsz{"cudaFreeAsync_ptsz", Library::kRuntime};
RealSlot real_malloc_from_pool{"cudaMallocFromPoolAsync", Library::kRuntime};
RealSlot real_malloc_from_pool_ptsz{"cudaMallocFromPoolAsync_ptsz", Library::kRuntime};
RealSlot real_memcpy{"cudaMemcpy", Library::kRuntime};
RealSlot real_memcpy_ptds{"cudaMemcpy_ptds", Library::kRuntime};
RealSlot real_memcpy_async{"cudaMemcpyAsync", Library::kRuntime};
RealSlot real_memcpy_async_ptsz{"cudaMemcpyAsync_ptsz", Library::kRuntime};
RealSlot real_entry_point{"cudaGetDriverEntryPoint", Library::kRuntime};
RealSlot real_entry_point_ptsz{"cudaGetDriverEntryPoint_ptsz", Library::kRuntime};
RealSlot real_entry_point_by_version{"cudaGetDriverEntryPointByVersion", Library::kRuntime};
RealSlot real_entry_point_by_version_ptsz{"cudaGetDriverEntryPointByVersion_ptsz", Library::kRuntime};

// The real function in `slot`, typed as `function` (the legacy export: both
// flavours share its signature).
template <typename F>
F Real(RealSlot& slot) {
  return reinterpret_cast<F>(slot.Get());
}
#define TC_REAL(slot, function) Real<decltype(&function)>(slot)

// What a call's null stream means: the legacy default stream, or, in the
// per-thread exports, the calling thread's own default stream.
enum class DefaultStream { kLegacy, kPerThread };

cudaStream_t Meant(cudaStream_t stream, DefaultStream flavour) {
  return stream == nullptr && flavour == DefaultStream::kPerThread ? cudaStreamPerThread : stream;
}

bool Capturing(cudaStream_t stream) {
  if (stream == nullptr || stream == cudaStreamLegacy) return false;  // legacy: capture would fail anyway
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  return cudaStreamIsCapturing(stream, &status) == cudaSuccess && status != cudaStreamCaptureStatusNone;
}

// The pool when the calling thread's current device is the served one.
tiercache::DeviceAllocator* ServingPool(PreloadState& s, const char** why) {
  tiercache::DeviceAllocator* pool = s.Pool(why);
  if (pool == nullptr) return nullptr;
  int device = -1;
  if (cudaGetDevice(&device) != cudaSuccess || device != s.device_ordinal()) {
    *why = "the current device is not the served one";
    return nullptr;
  }
  return pool;
}

cudaError_t Serve(Api api, void** pointer, size_t bytes, cudaStream_t stream, bool synchronous,
                  const char** why) {
  PreloadState& s = PreloadState::Get();
  tiercache::DeviceAllocator* pool = ServingPool(s, why);
  if (pool == nullptr) return cudaErrorNotReady;  // "not served": the caller passes through
  if (!synchronous && Capturing(stream)) {
    *why = "the stream is being captured into a graph";
    return cudaErrorNotReady;
  }
  tiercache::Stream on = synchronous ? s.sync_stream() : stream;
  Result<void*> p = pool->Allocate(bytes, on);
  if (!p.ok()) {
    if (p.status().code() != ErrorCode::kOutOfMemory) {
      *why = "the pool refused the request";
      return cudaErrorNotReady;
    }
    s.PassedThrough(api, bytes, cudaErrorMemoryAllocation, "the pool is out of memory");
    return cudaErrorMemoryAllocation;
  }
  // A block taken behind another stream's fence makes `on` wait on the
  // device; memory from a synchronous call may be used on any stream, so
  // that wait is finished here.
  if (synchronous) (void)pool->device().StreamSynchronize(on);
  *pointer = p.value();
  s.Adopt(p.value(), bytes, api);
  return cudaSuccess;
}

// cudaSuccess when the pool owned and took `pointer`.
bool ReturnToPool(Api api, void* pointer, cudaStream_t stream, bool synchronous) {
  PreloadState& s = PreloadState::Get();
  if (pointer == nullptr || !s.Owns(pointer)) return false;
  const char* why = "";
  tiercache::DeviceAllocator* pool = s.Pool(&why);
  if (pool == nullptr || !s.Release(pointer, api)) return false;
  if (synchronous && s.options().free_synchronizes) {
    // cudaFree waits for the device; a block freed here may be handed to any
    // stream at once, so the same wait keeps the memory's last users safe.
    int current = -1;
    (void)cudaGetDevice(&current);
    if (current != s.device_ordinal()) (void)cudaSetDevice(s.device_ordinal());
    (void)cudaDeviceSynchronize();
    if (current != s.device_ordinal() && current >= 0) (void)cudaSetDevice(current);
  }
  (void)pool->Free(pointer, synchronous ? s.sync_stream() : s.FreeStream(stream));
  return true;
}

// Stages a pageable host-to-device copy in `stream`'s order (the default
// stream of the caller's flavour for a synchronous copy); false when it does
// not apply.
bool TryStage(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream,
              bool synchronous) {
  PreloadState& s = PreloadState::Get();
  if (s.trace() != nullptr) {
    s.trace()->Touched(dst, count);
    s.trace()->Touched(src, count);
  }
  if (!s.options().stage_copies || count < s.options().stage_min_bytes || dst == nullptr ||
      src == nullptr || (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDefault)) {
    return false;
  }
  if (Capturing(stream)) return false;
  cudaPointerAttributes source{}, target{};
  if (cudaPointerGetAttributes(&source, src) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  if (source.type != cudaMemoryTypeUnregistered) return false;
  if (cudaPointerGetAttributes(&target, dst) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  if (target.type != cudaMemoryTypeDevice || target.device != s.device_ordinal()) return false;
  const char* why = "";
  tiercache::preload::PageableStager* stager = s.Stager(&why);
  if (stager == nullptr) return false;
  return stager->TryCopyToDevice(dst, src, count, stream, synchronous).ok();
}

// The stream-ordered calls and the copies, for either flavour: `inside` is
// TC_FROM_INSIDE() of the exported function, `slot` its real function.

cudaError_t MallocAsync(bool inside, RealSlot& slot, DefaultStream flavour, void** pointer, size_t bytes,
                        cudaStream_t stream) {
  auto real = TC_REAL(slot, cudaMallocAsync);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (inside) return real(pointer, bytes, stream);
  LibraryScope scope;
  const char* why = "null pointer or 0 bytes";
  if (pointer != nullptr && bytes > 0) {
    cudaError_t served = Serve(Api::kCudaMallocAsync, pointer, bytes, Meant(stream, flavour), false, &why);
    if (served != cudaErrorNotReady) return served;
  }
  cudaError_t r = real(pointer, bytes, stream);
  PreloadState::Get().PassedThrough(Api::kCudaMallocAsync, bytes, r, why);
  return r;
}

cudaError_t FreeAsync(bool inside, RealSlot& slot, DefaultStream flavour, void* pointer,
                      cudaStream_t stream) {
  auto real = TC_REAL(slot, cudaFreeAsync);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (inside || pointer == nullptr) return real(pointer, stream);
  LibraryScope scope;
  cudaStream_t on = Meant(stream, flavour);
  if (PreloadState::Get().Owns(pointer) && Capturing(on)) return cudaErrorStreamCaptureUnsupported;
  if (ReturnToPool(Api::kCudaFreeAsync, pointer, on, false)) return cudaSuccess;
  cudaError_t r = real(pointer, stream);
  PreloadState::Get().PassedThrough(Api::kCudaFreeAsync, 0, r, "not from the pool");
  return r;
}

cudaError_t MallocFromPoolAsync(bool inside, RealSlot& slot, DefaultStream flavour, void** pointer,
                                size_t bytes, cudaMemPool_t memory_pool, cudaStream_t stream) {
  auto real = TC_REAL(slot, cudaMallocFromPoolAsync);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (inside) return real(pointer, bytes, memory_pool, stream);
  LibraryScope scope;
  const char* why = "null pointer or 0 bytes";
  if (pointer != nullptr && bytes > 0 && memory_pool != nullptr) {
    // Only the device's own pools mean "device memory, nothing special";
    // a pool the application created may be IPC-exportable or elsewhere.
    int device = PreloadState::Get().device_ordinal();
    cudaMemPool_t default_pool = nullptr, current_pool = nullptr;
    bool plain = (cudaDeviceGetDefaultMemPool(&default_pool, device) == cudaSuccess &&
                  default_pool == memory_pool) ||
                 (cudaDeviceGetMemPool(&current_pool, device) == cudaSuccess && current_pool == memory_pool);
    (void)cudaGetLastError();
    why = "a memory pool the application created";
    if (plain) {
      cudaError_t served =
          Serve(Api::kCudaMallocFromPoolAsync, pointer, bytes, Meant(stream, flavour), false, &why);
      if (served != cudaErrorNotReady) return served;
    }
  }
  cudaError_t r = real(pointer, bytes, memory_pool, stream);
  PreloadState::Get().PassedThrough(Api::kCudaMallocFromPoolAsync, bytes, r, why);
  return r;
}

cudaError_t Memcpy(bool inside, RealSlot& slot, DefaultStream flavour, void* dst, const void* src,
                   size_t count, cudaMemcpyKind kind) {
  auto real = TC_REAL(slot, cudaMemcpy);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (inside) return real(dst, src, count, kind);
  LibraryScope scope;
  if (TryStage(dst, src, count, kind, Meant(nullptr, flavour), true)) return cudaSuccess;
  PreloadState::Get().CopyPassedThrough(Api::kCudaMemcpy, count);
  return real(dst, src, count, kind);
}

cudaError_t MemcpyAsync(bool inside, RealSlot& slot, DefaultStream flavour, void* dst, const void* src,
                        size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
  auto real = TC_REAL(slot, cudaMemcpyAsync);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (inside) return real(dst, src, count, kind, stream);
  LibraryScope scope;
  if (TryStage(dst, src, count, kind, Meant(stream, flavour), false)) return cudaSuccess;
  PreloadState::Get().CopyPassedThrough(Api::kCudaMemcpyAsync, count);
  return real(dst, src, count, kind, stream);
}

// The real entry-point lookup answered `r`: when it found a function the
// library interposes, the library's own goes back instead. A per-thread
// lookup's default flavour is the per-thread one.
cudaError_t Substituted(cudaError_t r, bool inside, DefaultStream flavour, const char* symbol,
                        void** function, int version, unsigned long long flags,
                        const cudaDriverEntryPointQueryResult* status) {
  if (r != cudaSuccess || (status != nullptr && *status != cudaDriverEntryPointSuccess) || inside) {
    return r;
  }
  if (flavour == DefaultStream::kPerThread) flags = tiercache::preload::PerThreadLookupFlags(flags);
  tiercache::preload::SubstituteDriverEntryPoint(symbol, version, flags, function);
  return r;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  auto real = TC_REAL(real_malloc, cudaMalloc);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (TC_FROM_INSIDE()) return real(pointer, bytes);
  LibraryScope scope;
  const char* why = "null pointer or 0 bytes";
  if (pointer != nullptr && bytes > 0) {
    cudaError_t served = Serve(Api::kCudaMalloc, pointer, bytes, nullptr, true, &why);
    if (served != cudaErrorNotReady) return served;
  }
  cudaError_t r = real(pointer, bytes);
  PreloadState::Get().PassedThrough(Api::kCudaMalloc, bytes, r, why);
  return r;
}

__attribute__((visibility("default"))) cudaError_t cudaFree(void* pointer) {
  auto real = TC_REAL(real_free, cudaFree);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (TC_FROM_INSIDE() || pointer == nullptr) return real(pointer);  // cudaFree(0): context set-up
  LibraryScope scope;
  if (ReturnToPool(Api::kCudaFree, pointer, nullptr, true)) return cudaSuccess;
  cudaError_t r = real(pointer);
  PreloadState::Get().PassedThrough(Api::kCudaFree, 0, r, "not from the pool");
  return r;
}

__attribute__((visibility("default"))) cudaError_t cudaMallocAsync(void** pointer, size_t bytes,
                                                                   cudaStream_t stream) {
  return MallocAsync(TC_FROM_INSIDE(), real_malloc_async, DefaultStream::kLegacy, pointer, bytes, stream);
}
__attribute__((visibility("default"))) cudaError_t cudaMallocAsync_ptsz(void** pointer, size_t bytes,
                                                                        cudaStream_t stream) {
  return MallocAsync(TC_FROM_INSIDE(), real_malloc_async_ptsz, DefaultStream::kPerThread, pointer, bytes,
                     stream);
}

__attribute__((visibility("default"))) cudaError_t cudaFreeAsync(void* pointer, cudaStream_t stream) {
  return FreeAsync(TC_FROM_INSIDE(), real_free_async, DefaultStream::kLegacy, pointer, stream);
}
__attribute__((visibility("default"))) cudaError_t cudaFreeAsync_ptsz(void* pointer, cudaStream_t stream) {
  return FreeAsync(TC_FROM_INSIDE(), real_free_async_ptsz, DefaultStream::kPerThread, pointer, stream);
}

__attribute__((visibility("default"))) cudaError_t cudaMallocFromPoolAsync(void** pointer, size_t bytes,
                                                                           cudaMemPool_t memory_pool,
                                                                           cudaStream_t stream) {
  return MallocFromPoolAsync(TC_FROM_INSIDE(), real_malloc_from_pool, DefaultStream::kLegacy, pointer, bytes,
                             memory_pool, stream);
}
__attribute__((visibility("default"))) cudaError_t cudaMallocFromPoolAsync_ptsz(void** pointer, size_t bytes,
                                                                                cudaMemPool_t memory_pool,
                                                                                cudaStream_t stream) {
  return MallocFromPoolAsync(TC_FROM_INSIDE(), real_malloc_from_pool_ptsz, DefaultStream::kPerThread,
                             pointer, bytes, memory_pool, stream);
}

__attribute__((visibility("default"))) cudaError_t cudaMemcpy(void* dst, const void* src, size_t count,
                                                              cudaMemcpyKind kind) {
  return Memcpy(TC_FROM_INSIDE(), real_memcpy, DefaultStream::kLegacy, dst, src, count, kind);
}
__attribute__((visibility("default"))) cudaError_t cudaMemcpy_ptds(void* dst, const void* src, size_t count,
                                                                   cudaMemcpyKind kind) {
  return Memcpy(TC_FROM_INSIDE(), real_memcpy_ptds, DefaultStream::kPerThread, dst, src, count, kind);
}

__attribute__((visibility("default"))) cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count,
                                                                   cudaMemcpyKind kind, cudaStream_t stream) {
  return MemcpyAsync(TC_FROM_INSIDE(), real_memcpy_async, DefaultStream::kLegacy, dst, src, count, kind,
                     stream);
}
__attribute__((visibility("default"))) cudaError_t cudaMemcpyAsync_ptsz(void* dst, const void* src,
                                                                        size_t count, cudaMemcpyKind kind,
                                                                        cudaStream_t stream) {
  return MemcpyAsync(TC_FROM_INSIDE(), real_memcpy_async_ptsz, DefaultStream::kPerThread, dst, src, count,
                     kind, stream);
}

__attribute__((visibility("default"))) cudaError_t cudaGetDriverEntryPoint(
    const char* symbol, void** function, unsigned long long flags, cudaDriverEntryPointQueryResult* status) {
  auto real = TC_REAL(real_entry_point, cudaGetDriverEntryPoint);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  return Substituted(real(symbol, function, flags, status), TC_FROM_INSIDE(), DefaultStream::kLegacy, symbol,
                     function, CUDART_VERSION, flags, status);
}
__attribute__((visibility("default"))) cudaError_t cudaGetDriverEntryPoint_ptsz(
    const char* symbol, void** function, unsigned long long flags, cudaDriverEntryPointQueryResult* status) {
  auto real = TC_REAL(real_entry_point_ptsz, cudaGetDriverEntryPoint);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  return Substituted(real(symbol, function, flags, status), TC_FROM_INSIDE(), DefaultStream::kPerThread,
                     symbol, function, CUDART_VERSION, flags, status);
}

__attribute__((visibility("default"))) cudaError_t cudaGetDriverEntryPointByVersion(
    const char* symbol, void** function, unsigned int version, unsigned long long flags,
    cudaDriverEntryPointQueryResult* status) {
  auto real = TC_REAL(real_entry_point_by_version, cudaGetDriverEntryPointByVersion);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  return Substituted(real(symbol, function, version, flags, status), TC_FROM_INSIDE(), DefaultStream::kLegacy,
                     symbol, function, static_cast<int>(version), flags, status);
}
__attribute__((visibility("default"))) cudaError_t cudaGetDriverEntryPointByVersion_ptsz(
    const char* symbol, void** function, unsigned int version, unsigned long long flags,
    cudaDriverEntryPointQueryResult* status) {
  auto real = TC_REAL(real_entry_point_by_version_ptsz, cudaGetDriverEntryPointByVersion);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  return Substituted(real(symbol, function, version, flags, status), TC_FROM_INSIDE(),
                     DefaultStream::kPerThread, symbol, function, static_cast<int>(version), flags, status);
}

}  // extern "C"

namespace tiercache::preload {

void* InterposedRuntimePointer(const char* symbol, RealSlot** real) {
  struct Entry {
    const char* name;
    void* function;
    RealSlot* slot;
  };
#define TC_ENTRY(function, slot) {#function, reinterpret_cast<void*>(&function), &slot}
  static const Entry kEntries[] = {
      TC_ENTRY(cudaMalloc, real_malloc),
      TC_ENTRY(cudaFree, real_free),
      TC_ENTRY(cudaMallocAsync, real_malloc_async),
      TC_ENTRY(cudaMallocAsync_ptsz, real_malloc_async_ptsz),
      TC_ENTRY(cudaFreeAsync, real_free_async),
      TC_ENTRY(cudaFreeAsync_ptsz, real_free_async_ptsz),
      TC_ENTRY(cudaMallocFromPoolAsync, real_malloc_from_pool),
      TC_ENTRY(cudaMallocFromPoolAsync_ptsz, real_malloc_from_pool_ptsz),
      TC_ENTRY(cudaMemcpy, real_memcpy),
      TC_ENTRY(cudaMemcpy_ptds, real_memcpy_ptds),
      TC_ENTRY(cudaMemcpyAsync, real_memcpy_async),
      TC_ENTRY(cudaMemcpyAsync_ptsz, real_memcpy_async_ptsz),
      TC_ENTRY(cudaGetDriverEntryPoint, real_entry_point),
      TC_ENTRY(cudaGetDriverEntryPoint_ptsz, real_entry_point_ptsz),
      TC_ENTRY(cudaGetDriverEntryPointByVersion, real_entry_point_by_version),
      TC_ENTRY(cudaGetDriverEntryPointByVersion_ptsz, real_entry_point_by_version_ptsz),
  };
#undef TC_ENTRY
  for (const Entry& e : kEntries) {
    if (std::strcmp(symbol, e.name) == 0) {
      *real = e.slot;
      return e.function;
    }
  }
  return nullptr;
}

}  // namespace tiercache::preload
