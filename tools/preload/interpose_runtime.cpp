// The CUDA runtime functions the library interposes. Each is defined
// unversioned, so it satisfies the versioned references engines carry
// (PyTorch's libc10_cuda imports cudaMalloc@libcudart.so.13) as well as
// plain ones; the real function is the runtime's own (real_symbols.h).
#include <cuda_runtime_api.h>

#include <cstring>

// cudaGetDriverEntryPoint is deprecated in CUDA 13 but still exported and
// still called by engines built against CUDA 12; it is interposed as well.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include "common/status.h"
#include "tools/preload/interposed.h"
#include "tools/preload/preload_state.h"

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
RealSlot real_free_async{"cudaFreeAsync", Library::kRuntime};
RealSlot real_malloc_from_pool{"cudaMallocFromPoolAsync", Library::kRuntime};
RealSlot real_memcpy{"cudaMemcpy", Library::kRuntime};
RealSlot real_memcpy_async{"cudaMemcpyAsync", Library::kRuntime};
RealSlot real_entry_point{"cudaGetDriverEntryPoint", Library::kRuntime};
RealSlot real_entry_point_by_version{"cudaGetDriverEntryPointByVersion", Library::kRuntime};

template <typename F>
F Real(RealSlot& slot) {
  return reinterpret_cast<F>(slot.Get());
}
#define TC_REAL(slot, function) Real<decltype(&function)>(slot)

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
  (void)pool->Free(pointer, synchronous ? s.sync_stream() : stream);
  return true;
}

// Stages a pageable host-to-device copy; false when it does not apply.
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
  if (!synchronous && Capturing(stream)) return false;
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
  return stager->TryCopyToDevice(dst, src, count, synchronous ? nullptr : stream, synchronous).ok();
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
  auto real = TC_REAL(real_malloc_async, cudaMallocAsync);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (TC_FROM_INSIDE()) return real(pointer, bytes, stream);
  LibraryScope scope;
  const char* why = "null pointer or 0 bytes";
  if (pointer != nullptr && bytes > 0) {
    cudaError_t served = Serve(Api::kCudaMallocAsync, pointer, bytes, stream, false, &why);
    if (served != cudaErrorNotReady) return served;
  }
  cudaError_t r = real(pointer, bytes, stream);
  PreloadState::Get().PassedThrough(Api::kCudaMallocAsync, bytes, r, why);
  return r;
}

__attribute__((visibility("default"))) cudaError_t cudaFreeAsync(void* pointer, cudaStream_t stream) {
  auto real = TC_REAL(real_free_async, cudaFreeAsync);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (TC_FROM_INSIDE() || pointer == nullptr) return real(pointer, stream);
  LibraryScope scope;
  if (PreloadState::Get().Owns(pointer) && Capturing(stream)) return cudaErrorStreamCaptureUnsupported;
  if (ReturnToPool(Api::kCudaFreeAsync, pointer, stream, false)) return cudaSuccess;
  cudaError_t r = real(pointer, stream);
  PreloadState::Get().PassedThrough(Api::kCudaFreeAsync, 0, r, "not from the pool");
  return r;
}

__attribute__((visibility("default"))) cudaError_t cudaMallocFromPoolAsync(void** pointer, size_t bytes,
                                                                           cudaMemPool_t memory_pool,
                                                                           cudaStream_t stream) {
  auto real = TC_REAL(real_malloc_from_pool, cudaMallocFromPoolAsync);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (TC_FROM_INSIDE()) return real(pointer, bytes, memory_pool, stream);
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
      cudaError_t served = Serve(Api::kCudaMallocFromPoolAsync, pointer, bytes, stream, false, &why);
      if (served != cudaErrorNotReady) return served;
    }
  }
  cudaError_t r = real(pointer, bytes, memory_pool, stream);
  PreloadState::Get().PassedThrough(Api::kCudaMallocFromPoolAsync, bytes, r, why);
  return r;
}

__attribute__((visibility("default"))) cudaError_t cudaMemcpy(void* dst, const void* src, size_t count,
                                                              cudaMemcpyKind kind) {
  auto real = TC_REAL(real_memcpy, cudaMemcpy);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (TC_FROM_INSIDE()) return real(dst, src, count, kind);
  LibraryScope scope;
  if (TryStage(dst, src, count, kind, nullptr, true)) return cudaSuccess;
  PreloadState::Get().CopyPassedThrough(Api::kCudaMemcpy, count);
  return real(dst, src, count, kind);
}

__attribute__((visibility("default"))) cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count,
                                                                   cudaMemcpyKind kind, cudaStream_t stream) {
  auto real = TC_REAL(real_memcpy_async, cudaMemcpyAsync);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  if (TC_FROM_INSIDE()) return real(dst, src, count, kind, stream);
  LibraryScope scope;
  if (TryStage(dst, src, count, kind, stream, false)) return cudaSuccess;
  PreloadState::Get().CopyPassedThrough(Api::kCudaMemcpyAsync, count);
  return real(dst, src, count, kind, stream);
}

__attribute__((visibility("default"))) cudaError_t cudaGetDriverEntryPoint(
    const char* symbol, void** function, unsigned long long flags, cudaDriverEntryPointQueryResult* status) {
  auto real = TC_REAL(real_entry_point, cudaGetDriverEntryPoint);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  cudaError_t r = real(symbol, function, flags, status);
  if (r == cudaSuccess && (status == nullptr || *status == cudaDriverEntryPointSuccess) &&
      !TC_FROM_INSIDE()) {
    tiercache::preload::SubstituteDriverEntryPoint(symbol, CUDART_VERSION, flags, function);
  }
  return r;
}

__attribute__((visibility("default"))) cudaError_t cudaGetDriverEntryPointByVersion(
    const char* symbol, void** function, unsigned int version, unsigned long long flags,
    cudaDriverEntryPointQueryResult* status) {
  auto real = TC_REAL(real_entry_point_by_version, cudaGetDriverEntryPointByVersion);
  if (real == nullptr) return cudaErrorSymbolNotFound;
  cudaError_t r = real(symbol, function, version, flags, status);
  if (r == cudaSuccess && (status == nullptr || *status == cudaDriverEntryPointSuccess) &&
      !TC_FROM_INSIDE()) {
    tiercache::preload::SubstituteDriverEntryPoint(symbol, static_cast<int>(version), flags, function);
  }
  return r;
}

}  // extern "C"

namespace tiercache::preload {

void* InterposedRuntimePointer(const char* symbol, RealSlot** real) {
  struct Entry {
    const char* name;
    void* function;
    RealSlot* slot;
  };
  static const Entry kEntries[] = {
      {"cudaMalloc", reinterpret_cast<void*>(&cudaMalloc), &real_malloc},
      {"cudaFree", reinterpret_cast<void*>(&cudaFree), &real_free},
      {"cudaMallocAsync", reinterpret_cast<void*>(&cudaMallocAsync), &real_malloc_async},
      {"cudaFreeAsync", reinterpret_cast<void*>(&cudaFreeAsync), &real_free_async},
      {"cudaMallocFromPoolAsync", reinterpret_cast<void*>(&cudaMallocFromPoolAsync), &real_malloc_from_pool},
      {"cudaMemcpy", reinterpret_cast<void*>(&cudaMemcpy), &real_memcpy},
      {"cudaMemcpyAsync", reinterpret_cast<void*>(&cudaMemcpyAsync), &real_memcpy_async},
      {"cudaGetDriverEntryPoint", reinterpret_cast<void*>(&cudaGetDriverEntryPoint), &real_entry_point},
      {"cudaGetDriverEntryPointByVersion", reinterpret_cast<void*>(&cudaGetDriverEntryPointByVersion),
       &real_entry_point_by_version},
  };
  for (const Entry& e : kEntries) {
    if (std::strcmp(symbol, e.name) == 0) {
      *real = e.slot;
      return e.function;
    }
  }
  return nullptr;
}

}  // namespace tiercache::preload
