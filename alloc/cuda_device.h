// CudaDevice: the Device seam over the CUDA runtime.
//
// Contract: a thin translation of each Device call to its CUDA runtime
// counterpart (cudaMalloc/cudaFree, cudaHostRegister, non-blocking streams
// with priorities, events without timing, cudaMemcpyAsync, cudaMemsetAsync,
// cudaLaunchHostFunc, cudaStreamWaitEvent). Stream and Event handles are the
// raw cudaStream_t / cudaEvent_t, so an engine may pass them to its own
// kernels. CUDA errors become Status codes: allocation failures kOutOfMemory,
// bad handles and pointers kInvalidArgument, a missing driver or GPU
// kUnavailable. This header is built only with TIERCACHE_WITH_CUDA; it links
// the shared cudart and never libcuda, so it loads where no driver exists.
//
// Thread safety: every method may be called from any thread; calls that
// depend on the current device set it first (cudaSetDevice is per thread).
#ifndef TIERCACHE_ALLOC_CUDA_DEVICE_H_
#define TIERCACHE_ALLOC_CUDA_DEVICE_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "alloc/device.h"

namespace tiercache {

// The number of CUDA devices, or kUnavailable with the runtime's reason
// (no driver, no device) when cudaGetDeviceCount fails or finds none.
Result<int> CudaDeviceCount();

// Opens CUDA device `ordinal`; kUnavailable without a usable GPU,
// kInvalidArgument for an ordinal past the device count.
Result<std::shared_ptr<Device>> OpenCudaDevice(int ordinal);

class CudaDevice final : public Device {
 public:
  ~CudaDevice() override = default;
  const DeviceInfo& info() const override { return info_; }

  Result<void*> AllocateMemory(size_t bytes) override;
  Status FreeMemory(void* pointer) override;
  Result<uint64_t> FreeMemoryBytes() override;

  Status RegisterHost(void* pointer, size_t bytes) override;
  Status UnregisterHost(void* pointer) override;

  Result<Stream> CreateStream() override;
  Result<Stream> CreateStreamWithPriority(int priority) override;
  Status DestroyStream(Stream stream) override;
  uint64_t DestroyedStreamCount() const override;
  bool IsStreamLive(Stream stream) const override;
  Result<Event> CreateEvent() override;
  Status DestroyEvent(Event event) override;

  Status CopyAsync(void* dst, const void* src, size_t bytes, CopyKind kind,
                   Stream stream) override;
  Status MemsetAsync(void* dst, int value, size_t bytes, Stream stream) override;
  Status LaunchHostFunc(Stream stream, void (*fn)(void*), void* arg) override;

  Status RecordEvent(Event event, Stream stream) override;
  Status StreamWaitEvent(Stream stream, Event event) override;
  Result<bool> EventQuery(Event event) override;
  Status EventSynchronize(Event event) override;
  Status StreamSynchronize(Stream stream) override;

 private:
  friend Result<std::shared_ptr<Device>> OpenCudaDevice(int ordinal);
  explicit CudaDevice(DeviceInfo info) : info_(std::move(info)) {}
  Status UseDevice() const;

  DeviceInfo info_;
  mutable std::mutex streams_mutex_;
  std::unordered_set<Stream> streams_;    // created here and live
  std::unordered_set<Stream> destroyed_;  // destroyed here, handle not reissued
  std::atomic<uint64_t> destroyed_count_{0};
};

}  // namespace tiercache

#endif  // TIERCACHE_ALLOC_CUDA_DEVICE_H_
