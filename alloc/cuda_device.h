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
// Virtual memory uses the driver's cuMem calls, reached through the runtime's
// driver entry points (alloc/cuda_driver.h): ReserveAddressRange is
// cuMemAddressReserve; MapMemory backs each granule with its own
// cuMemCreate'd physical allocation (so any run of granules can be unmapped
// on its own), maps it and grants this device read/write access; UnmapMemory
// waits for the device's work (as cudaFree does), then unmaps and releases
// each granule. MappingGranularity() is the driver's minimum granularity
// for pinned memory on this device, found once at open, or 0 (and every
// virtual-memory call kUnavailable) when a driver symbol is missing or the
// device reports no virtual memory management support.
//
// Thread safety: every method may be called from any thread; calls that
// depend on the current device set it first (cudaSetDevice is per thread).
#ifndef TIERCACHE_ALLOC_CUDA_DEVICE_H_
#define TIERCACHE_ALLOC_CUDA_DEVICE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "alloc/device.h"

namespace tiercache {

struct CudaDriver;

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

  uint64_t MappingGranularity() const override { return granularity_; }
  Result<void*> ReserveAddressRange(size_t bytes) override;
  Status FreeAddressRange(void* base) override;
  Status MapMemory(void* address, size_t bytes) override;
  Status UnmapMemory(void* address, size_t bytes) override;

  Status RegisterHost(void* pointer, size_t bytes) override;
  Status RegisterHostReadOnly(const void* pointer, size_t bytes) override;
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
  // Launches the codec's decode kernel (codec/bf16_decode_cuda.h).
  Status DecodeAsync(const codec::Bf16DecodeJob& job, Stream stream) override;

  Status RecordEvent(Event event, Stream stream) override;
  Status StreamWaitEvent(Stream stream, Event event) override;
  Result<bool> EventQuery(Event event) override;
  Status EventSynchronize(Event event) override;
  Status StreamSynchronize(Stream stream) override;

 private:
  friend Result<std::shared_ptr<Device>> OpenCudaDevice(int ordinal);
  explicit CudaDevice(DeviceInfo info) : info_(std::move(info)) {}
  Status UseDevice() const;
  // Sets driver_, cu_device_ and granularity_ when the device maps virtual
  // memory; otherwise leaves granularity_ 0 and logs why.
  void InitVirtualMemory();
  // kUnavailable without virtual memory; kInvalidArgument unless `address`
  // and `bytes` are granule multiples inside one reserved range.
  Status CheckMappingRange(uintptr_t address, size_t bytes) const;
  // Unmaps and releases granules already taken out of mapped_, erasing each
  // one done; returns the first error but tries every granule.
  Status UnmapGranules(std::map<uintptr_t, unsigned long long>* granules);

  DeviceInfo info_;
  const CudaDriver* driver_ = nullptr;
  int cu_device_ = 0;         // CUdevice
  uint64_t granularity_ = 0;  // fixed after InitVirtualMemory
  mutable std::mutex vm_mutex_;
  std::map<uintptr_t, size_t> reservations_;          // base -> bytes
  std::map<uintptr_t, unsigned long long> mapped_;    // granule -> its CUmemGenericAllocationHandle
  mutable std::mutex streams_mutex_;
  std::unordered_set<Stream> streams_;    // created here and live
  std::unordered_set<Stream> destroyed_;  // destroyed here, handle not reissued
  std::atomic<uint64_t> destroyed_count_{0};
};

}  // namespace tiercache

#endif  // TIERCACHE_ALLOC_CUDA_DEVICE_H_
