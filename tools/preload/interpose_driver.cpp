// The driver functions the library interposes: cuMemAlloc_v2, cuMemFree_v2,
// cuMemAllocAsync(_ptsz), cuMemFreeAsync(_ptsz), and cuGetProcAddress(_v2),
// which hands the others out by name and version. <cuda.h> is not included:
// its macros rename these very symbols (cuGetProcAddress ->
// cuGetProcAddress_v2); the ABI types are written here.
#include <cuda_runtime_api.h>

#include "common/status.h"
#include "tools/preload/interposed.h"
#include "tools/preload/preload_state.h"

namespace {

using CUresult = int;
using CUdeviceptr = unsigned long long;
using CUstream = void*;
constexpr CUresult kSuccess = 0;
constexpr CUresult kOutOfMemory = 2;
constexpr CUresult kNotFound = 500;
CUstream const kPerThreadStream = reinterpret_cast<CUstream>(0x2);  // CU_STREAM_PER_THREAD

using tiercache::ErrorCode;
using tiercache::Result;
using tiercache::preload::Api;
using tiercache::preload::DriverFunction;
using tiercache::preload::InsideLibrary;
using tiercache::preload::LibraryScope;
using tiercache::preload::Library;
using tiercache::preload::PreloadState;
using tiercache::preload::RealSlot;

RealSlot real_alloc{"cuMemAlloc_v2", Library::kDriver};
RealSlot real_free{"cuMemFree_v2", Library::kDriver};
RealSlot real_alloc_async{"cuMemAllocAsync", Library::kDriver};
RealSlot real_free_async{"cuMemFreeAsync", Library::kDriver};
RealSlot real_alloc_async_ptsz{"cuMemAllocAsync_ptsz", Library::kDriver};
RealSlot real_free_async_ptsz{"cuMemFreeAsync_ptsz", Library::kDriver};
RealSlot real_get_proc{"cuGetProcAddress", Library::kDriver};
RealSlot real_get_proc_v2{"cuGetProcAddress_v2", Library::kDriver};

template <typename F>
F Real(RealSlot& slot) {
  return reinterpret_cast<F>(slot.Get());
}

// The pool when this call may be served: a current context that is the
// served device's primary context, and not a stream being captured.
// The context is read before the pool may open, so a thread without one is
// passed through without the library creating one for it.
tiercache::DeviceAllocator* ServingPool(PreloadState& s, CUstream stream, const char** why) {
  void* ctx = s.CurrentContext();
  if (ctx == nullptr) {
    *why = "no current context on this thread";
    return nullptr;
  }
  tiercache::DeviceAllocator* pool = s.Pool(why);
  if (pool == nullptr) return nullptr;
  if (ctx != s.primary_context()) {
    *why = "the current context is not the served device's primary context";
    return nullptr;
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (stream != nullptr && stream != reinterpret_cast<CUstream>(0x1) &&
      cudaStreamIsCapturing(static_cast<cudaStream_t>(stream), &capture) == cudaSuccess &&
      capture != cudaStreamCaptureStatusNone) {
    *why = "the stream is being captured into a graph";
    return nullptr;
  }
  return pool;
}

CUresult Allocate(bool inside, Api api, RealSlot& slot, CUdeviceptr* dptr, size_t bytes,
                  CUstream stream, bool synchronous) {
  using AsyncFn = CUresult (*)(CUdeviceptr*, size_t, CUstream);
  using SyncFn = CUresult (*)(CUdeviceptr*, size_t);
  auto real = [&]() -> CUresult {
    void* f = slot.Get();
    if (f == nullptr) return kNotFound;
    return synchronous ? reinterpret_cast<SyncFn>(f)(dptr, bytes)
                       : reinterpret_cast<AsyncFn>(f)(dptr, bytes, stream);
  };
  if (inside) return real();
  LibraryScope scope;
  PreloadState& s = PreloadState::Get();
  const char* why = "null pointer or 0 bytes";
  tiercache::DeviceAllocator* pool =
      dptr != nullptr && bytes > 0 ? ServingPool(s, synchronous ? nullptr : stream, &why) : nullptr;
  if (pool != nullptr) {
    tiercache::Stream on = synchronous ? s.sync_stream() : stream;
    Result<void*> p = pool->Allocate(bytes, on);
    if (p.ok() && synchronous) (void)pool->device().StreamSynchronize(on);
    if (p.ok()) {
      *dptr = reinterpret_cast<CUdeviceptr>(p.value());
      s.Adopt(p.value(), bytes, api);
      return kSuccess;
    }
    if (p.status().code() == ErrorCode::kOutOfMemory) {
      s.PassedThrough(api, bytes, kOutOfMemory, "the pool is out of memory");
      return kOutOfMemory;
    }
    why = "the pool refused the request";
  }
  CUresult r = real();
  s.PassedThrough(api, bytes, r, why);
  return r;
}

CUresult Free(bool inside, Api api, RealSlot& slot, CUdeviceptr dptr, CUstream stream,
              bool synchronous) {
  using AsyncFn = CUresult (*)(CUdeviceptr, CUstream);
  using SyncFn = CUresult (*)(CUdeviceptr);
  auto real = [&]() -> CUresult {
    void* f = slot.Get();
    if (f == nullptr) return kNotFound;
    return synchronous ? reinterpret_cast<SyncFn>(f)(dptr) : reinterpret_cast<AsyncFn>(f)(dptr, stream);
  };
  void* pointer = reinterpret_cast<void*>(dptr);
  if (inside || pointer == nullptr) return real();
  LibraryScope scope;
  PreloadState& s = PreloadState::Get();
  const char* why = "not from the pool";
  tiercache::DeviceAllocator* pool = s.Owns(pointer) ? s.Pool(&why) : nullptr;
  if (pool != nullptr && s.Release(pointer, api)) {
    if (synchronous && s.options().free_synchronizes) (void)cudaDeviceSynchronize();
    (void)pool->Free(pointer, synchronous ? s.sync_stream() : s.FreeStream(stream));
    return kSuccess;
  }
  CUresult r = real();
  s.PassedThrough(api, 0, r, why);
  return r;
}

// The real lookup answered; substitute when the name is ours.
CUresult AfterLookup(CUresult r, const char* symbol, void** pfn, int version,
                     unsigned long long flags, int* status, const void* caller) {
  if (r == kSuccess && (status == nullptr || *status == 0) &&
      !tiercache::preload::CallerIsCudaLibrary(caller)) {
    tiercache::preload::SubstituteDriverEntryPoint(symbol, version, flags, pfn);
  }
  return r;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes) {
  return Allocate(TC_FROM_INSIDE(), Api::kCuMemAlloc, real_alloc, dptr, bytes, nullptr, true);
}
__attribute__((visibility("default"))) CUresult cuMemFree_v2(CUdeviceptr dptr) {
  return Free(TC_FROM_INSIDE(), Api::kCuMemFree, real_free, dptr, nullptr, true);
}
__attribute__((visibility("default"))) CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytes,
                                                                CUstream stream) {
  return Allocate(TC_FROM_INSIDE(), Api::kCuMemAllocAsync, real_alloc_async, dptr, bytes, stream, false);
}
__attribute__((visibility("default"))) CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream) {
  return Free(TC_FROM_INSIDE(), Api::kCuMemFreeAsync, real_free_async, dptr, stream, false);
}
__attribute__((visibility("default"))) CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytes,
                                                                     CUstream stream) {
  return Allocate(TC_FROM_INSIDE(), Api::kCuMemAllocAsync, real_alloc_async_ptsz, dptr, bytes,
                  stream == nullptr ? kPerThreadStream : stream, false);
}
__attribute__((visibility("default"))) CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream) {
  return Free(TC_FROM_INSIDE(), Api::kCuMemFreeAsync, real_free_async_ptsz, dptr,
              stream == nullptr ? kPerThreadStream : stream, false);
}
__attribute__((visibility("default"))) CUresult cuGetProcAddress(const char* symbol, void** pfn,
                                                                 int version, unsigned long long flags) {
  using Fn = CUresult (*)(const char*, void**, int, unsigned long long);
  Fn real = Real<Fn>(real_get_proc);
  if (real == nullptr) return kNotFound;
  CUresult r = real(symbol, pfn, version, flags);
  if (TC_FROM_INSIDE()) return r;
  return AfterLookup(r, symbol, pfn, version, flags, nullptr, __builtin_return_address(0));
}
__attribute__((visibility("default"))) CUresult cuGetProcAddress_v2(const char* symbol, void** pfn,
                                                                    int version, unsigned long long flags,
                                                                    int* status) {
  using Fn = CUresult (*)(const char*, void**, int, unsigned long long, int*);
  Fn real = Real<Fn>(real_get_proc_v2);
  if (real == nullptr) return kNotFound;
  CUresult r = real(symbol, pfn, version, flags, status);
  if (TC_FROM_INSIDE()) return r;
  return AfterLookup(r, symbol, pfn, version, flags, status, __builtin_return_address(0));
}

}  // extern "C"

namespace tiercache::preload {

void* InterposedDriverPointer(DriverFunction f) {
  switch (f) {
    case DriverFunction::kMemAlloc: return reinterpret_cast<void*>(&cuMemAlloc_v2);
    case DriverFunction::kMemFree: return reinterpret_cast<void*>(&cuMemFree_v2);
    case DriverFunction::kMemAllocAsync: return reinterpret_cast<void*>(&cuMemAllocAsync);
    case DriverFunction::kMemFreeAsync: return reinterpret_cast<void*>(&cuMemFreeAsync);
    case DriverFunction::kMemAllocAsyncPerThread: return reinterpret_cast<void*>(&cuMemAllocAsync_ptsz);
    case DriverFunction::kMemFreeAsyncPerThread: return reinterpret_cast<void*>(&cuMemFreeAsync_ptsz);
    case DriverFunction::kGetProcAddress: return reinterpret_cast<void*>(&cuGetProcAddress);
    case DriverFunction::kGetProcAddressV2: return reinterpret_cast<void*>(&cuGetProcAddress_v2);
    case DriverFunction::kNone: break;
  }
  return nullptr;
}

RealSlot* RealDriverSlot(DriverFunction f) {
  switch (f) {
    case DriverFunction::kMemAlloc: return &real_alloc;
    case DriverFunction::kMemFree: return &real_free;
    case DriverFunction::kMemAllocAsync: return &real_alloc_async;
    case DriverFunction::kMemFreeAsync: return &real_free_async;
    case DriverFunction::kMemAllocAsyncPerThread: return &real_alloc_async_ptsz;
    case DriverFunction::kMemFreeAsyncPerThread: return &real_free_async_ptsz;
    case DriverFunction::kGetProcAddress: return &real_get_proc;
    case DriverFunction::kGetProcAddressV2: return &real_get_proc_v2;
    case DriverFunction::kNone: break;
  }
  return nullptr;
}

void SubstituteDriverEntryPoint(const char* name, int version, unsigned long long flags,
                                void** function) {
  if (name == nullptr || function == nullptr || *function == nullptr) return;
  DriverFunction f = InterposedByVersion(name, version, flags);
  if (f == DriverFunction::kNone) return;
  RealDriverSlot(f)->Offer(*function);
  *function = InterposedDriverPointer(f);
}

}  // namespace tiercache::preload
