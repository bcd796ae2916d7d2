#include "alloc/cuda_device.h"

#include <cuda.h>  // types only: every driver call goes through alloc/cuda_driver.h
#include <cuda_runtime_api.h>

#include <string>
#include <type_traits>

#include "alloc/cuda_driver.h"
#include "codec/bf16_decode_cuda.h"
#include "codec/bf16_format.h"
#include "common/log.h"

namespace tiercache {
namespace {

Status FromCuda(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return Status::Ok();
  cudaGetLastError();  // clear the (non-sticky) error so later calls are not blamed
  std::string message = std::string(what) + ": " + cudaGetErrorName(error) + " (" +
                        cudaGetErrorString(error) + ")";
  switch (error) {
    case cudaErrorMemoryAllocation:
      return Status::OutOfMemory(message);
    case cudaErrorInvalidValue:
    case cudaErrorInvalidDevicePointer:
    case cudaErrorInvalidResourceHandle:
    case cudaErrorInvalidDevice:
    case cudaErrorHostMemoryNotRegistered:
      return Status::InvalidArgument(message);
    case cudaErrorHostMemoryAlreadyRegistered:
      return Status::AlreadyExists(message);
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
      return Status::Unavailable(message);
    case cudaErrorNotSupported:
      return Status::Unsupported(message);
    default:
      return Status::Internal(message);
  }
}

cudaMemcpyKind ToCuda(CopyKind kind) {
  switch (kind) {
    case CopyKind::kHostToDevice: return cudaMemcpyHostToDevice;
    case CopyKind::kDeviceToHost: return cudaMemcpyDeviceToHost;
    case CopyKind::kDeviceToDevice: return cudaMemcpyDeviceToDevice;
    case CopyKind::kHostToHost: return cudaMemcpyHostToHost;
  }
  return cudaMemcpyDefault;
}

// The header keeps <cuda.h> out, so it spells these driver types itself.
static_assert(std::is_same_v<CUmemGenericAllocationHandle, unsigned long long>);
static_assert(std::is_same_v<CUdevice, int>);
static_assert(sizeof(CUdeviceptr) == sizeof(uintptr_t));

// Pinned (non-migratable) device memory on `device`, the only kind the
// arena maps.
CUmemAllocationProp PinnedOnDevice(int device) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

cudaStream_t AsCudaStream(Stream stream) { return static_cast<cudaStream_t>(stream); }
cudaEvent_t AsCudaEvent(Event event) { return static_cast<cudaEvent_t>(event); }

}  // namespace

Result<int> CudaDeviceCount() {
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return Status::Unavailable(std::string("cudaGetDeviceCount: ") + cudaGetErrorName(error) +
                               " (" + cudaGetErrorString(error) + ")");
  }
  if (count == 0) return Status::Unavailable("cudaGetDeviceCount found no CUDA device");
  return count;
}

Result<std::shared_ptr<Device>> OpenCudaDevice(int ordinal) {
  TC_ASSIGN_OR_RETURN(int count, CudaDeviceCount());
  if (ordinal < 0 || ordinal >= count) {
    return Status::InvalidArgument("CUDA device ordinal " + std::to_string(ordinal) +
                                   " is out of range (" + std::to_string(count) + " devices)");
  }
  cudaDeviceProp properties{};
  TC_RETURN_IF_ERROR(FromCuda(cudaGetDeviceProperties(&properties, ordinal), "cudaGetDeviceProperties"));
  char bus_id[32] = {0};
  TC_RETURN_IF_ERROR(FromCuda(cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), ordinal),
                              "cudaDeviceGetPCIBusId"));
  DeviceInfo info;
  info.kind = DeviceKind::kCuda;
  info.ordinal = ordinal;
  info.name = properties.name;
  info.pci_bus_id = bus_id;
  info.total_memory = properties.totalGlobalMem;
  auto* device = new CudaDevice(std::move(info));
  std::shared_ptr<Device> shared(device);
  device->InitVirtualMemory();
  return shared;
}

Status CudaDevice::UseDevice() const {
  return FromCuda(cudaSetDevice(info_.ordinal), "cudaSetDevice");
}

Result<void*> CudaDevice::AllocateMemory(size_t bytes) {
  if (bytes == 0) return Status::InvalidArgument("AllocateMemory of 0 bytes");
  TC_RETURN_IF_ERROR(UseDevice());
  void* pointer = nullptr;
  TC_RETURN_IF_ERROR(FromCuda(cudaMalloc(&pointer, bytes), "cudaMalloc"));
  return pointer;
}

Status CudaDevice::FreeMemory(void* pointer) {
  if (pointer == nullptr) return Status::InvalidArgument("FreeMemory of a null pointer");
  TC_RETURN_IF_ERROR(UseDevice());
  return FromCuda(cudaFree(pointer), "cudaFree");
}

Result<uint64_t> CudaDevice::FreeMemoryBytes() {
  TC_RETURN_IF_ERROR(UseDevice());
  size_t free_bytes = 0, total_bytes = 0;
  TC_RETURN_IF_ERROR(FromCuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo"));
  return static_cast<uint64_t>(free_bytes);
}

Status CudaDevice::RegisterHost(void* pointer, size_t bytes) {
  if (pointer == nullptr || bytes == 0) return Status::InvalidArgument("RegisterHost of an empty range");
  TC_RETURN_IF_ERROR(UseDevice());
  return FromCuda(cudaHostRegister(pointer, bytes, cudaHostRegisterPortable), "cudaHostRegister");
}

Status CudaDevice::RegisterHostReadOnly(const void* pointer, size_t bytes) {
  if (pointer == nullptr || bytes == 0) return Status::InvalidArgument("RegisterHost of an empty range");
  TC_RETURN_IF_ERROR(UseDevice());
  return FromCuda(cudaHostRegister(const_cast<void*>(pointer), bytes,
                                   cudaHostRegisterPortable | cudaHostRegisterReadOnly),
                  "cudaHostRegister(read-only)");
}

Status CudaDevice::UnregisterHost(void* pointer) {
  return FromCuda(cudaHostUnregister(pointer), "cudaHostUnregister");
}

Result<Stream> CudaDevice::CreateStream() { return CreateStreamWithPriority(0); }

Result<Stream> CudaDevice::CreateStreamWithPriority(int priority) {
  TC_RETURN_IF_ERROR(UseDevice());
  int least = 0, greatest = 0;
  TC_RETURN_IF_ERROR(FromCuda(cudaDeviceGetStreamPriorityRange(&least, &greatest),
                              "cudaDeviceGetStreamPriorityRange"));
  // CUDA's range runs from `least` (numerically largest) to `greatest`.
  int clamped = priority > least ? least : (priority < greatest ? greatest : priority);
  cudaStream_t stream = nullptr;
  TC_RETURN_IF_ERROR(FromCuda(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, clamped),
                              "cudaStreamCreateWithPriority"));
  std::lock_guard<std::mutex> lock(streams_mutex_);
  streams_.insert(stream);
  destroyed_.erase(stream);  // the runtime may reissue a destroyed handle's address
  return static_cast<Stream>(stream);
}

Status CudaDevice::DestroyStream(Stream stream) {
  if (stream == nullptr) return Status::InvalidArgument("the default stream cannot be destroyed");
  {
    std::lock_guard<std::mutex> lock(streams_mutex_);
    if (destroyed_.count(stream) != 0) {
      return Status::InvalidArgument("DestroyStream of a destroyed stream");
    }
  }
  TC_RETURN_IF_ERROR(FromCuda(cudaStreamSynchronize(AsCudaStream(stream)), "cudaStreamSynchronize"));
  TC_RETURN_IF_ERROR(FromCuda(cudaStreamDestroy(AsCudaStream(stream)), "cudaStreamDestroy"));
  std::lock_guard<std::mutex> lock(streams_mutex_);
  if (streams_.erase(stream) != 0) {
    destroyed_.insert(stream);
    destroyed_count_.fetch_add(1, std::memory_order_release);
  }
  return Status::Ok();
}

uint64_t CudaDevice::DestroyedStreamCount() const {
  return destroyed_count_.load(std::memory_order_acquire);
}

bool CudaDevice::IsStreamLive(Stream stream) const {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  return destroyed_.count(stream) == 0;
}

Result<Event> CudaDevice::CreateEvent() {
  TC_RETURN_IF_ERROR(UseDevice());
  cudaEvent_t event = nullptr;
  TC_RETURN_IF_ERROR(FromCuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming),
                              "cudaEventCreateWithFlags"));
  return static_cast<Event>(event);
}

Status CudaDevice::DestroyEvent(Event event) {
  if (event == nullptr) return Status::InvalidArgument("DestroyEvent of a null event");
  return FromCuda(cudaEventDestroy(AsCudaEvent(event)), "cudaEventDestroy");
}

Status CudaDevice::CopyAsync(void* dst, const void* src, size_t bytes, CopyKind kind,
                             Stream stream) {
  if (bytes == 0) return Status::Ok();
  if (dst == nullptr || src == nullptr) return Status::InvalidArgument("CopyAsync with a null pointer");
  if (stream == nullptr) TC_RETURN_IF_ERROR(UseDevice());
  return FromCuda(cudaMemcpyAsync(dst, src, bytes, ToCuda(kind), AsCudaStream(stream)), "cudaMemcpyAsync");
}

Status CudaDevice::MemsetAsync(void* dst, int value, size_t bytes, Stream stream) {
  if (bytes == 0) return Status::Ok();
  if (stream == nullptr) TC_RETURN_IF_ERROR(UseDevice());
  return FromCuda(cudaMemsetAsync(dst, value, bytes, AsCudaStream(stream)), "cudaMemsetAsync");
}

Status CudaDevice::DecodeAsync(const codec::Bf16DecodeJob& job, Stream stream) {
  TC_RETURN_IF_ERROR(codec::CheckBf16DecodeJob(job));
  TC_RETURN_IF_ERROR(UseDevice());  // a launch goes to the current device
  return FromCuda(static_cast<cudaError_t>(codec::LaunchBf16DecodeKernel(job, stream)),
                  "bf16 decode kernel launch");
}

Status CudaDevice::LaunchHostFunc(Stream stream, void (*fn)(void*), void* arg) {
  if (fn == nullptr) return Status::InvalidArgument("LaunchHostFunc with a null function");
  if (stream == nullptr) TC_RETURN_IF_ERROR(UseDevice());
  return FromCuda(cudaLaunchHostFunc(AsCudaStream(stream), fn, arg), "cudaLaunchHostFunc");
}

Status CudaDevice::RecordEvent(Event event, Stream stream) {
  if (event == nullptr) return Status::InvalidArgument("RecordEvent of a null event");
  if (stream == nullptr) TC_RETURN_IF_ERROR(UseDevice());
  return FromCuda(cudaEventRecord(AsCudaEvent(event), AsCudaStream(stream)), "cudaEventRecord");
}

Status CudaDevice::StreamWaitEvent(Stream stream, Event event) {
  if (event == nullptr) return Status::InvalidArgument("StreamWaitEvent on a null event");
  if (stream == nullptr) TC_RETURN_IF_ERROR(UseDevice());
  return FromCuda(cudaStreamWaitEvent(AsCudaStream(stream), AsCudaEvent(event), 0), "cudaStreamWaitEvent");
}

Result<bool> CudaDevice::EventQuery(Event event) {
  if (event == nullptr) return Status::InvalidArgument("EventQuery of a null event");
  cudaError_t error = cudaEventQuery(AsCudaEvent(event));
  if (error == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  TC_RETURN_IF_ERROR(FromCuda(error, "cudaEventQuery"));
  return true;
}

Status CudaDevice::EventSynchronize(Event event) {
  if (event == nullptr) return Status::InvalidArgument("EventSynchronize of a null event");
  return FromCuda(cudaEventSynchronize(AsCudaEvent(event)), "cudaEventSynchronize");
}

Status CudaDevice::StreamSynchronize(Stream stream) {
  if (stream == nullptr) TC_RETURN_IF_ERROR(UseDevice());
  return FromCuda(cudaStreamSynchronize(AsCudaStream(stream)), "cudaStreamSynchronize");
}

}  // namespace tiercache

// ---- virtual memory -------------------------------------------------------------
// The driver's cuMem calls, through the runtime's entry points. Each granule
// is its own physical allocation so the pool can unmap any run of granules
// (the arena's tail) without touching its neighbours.

namespace tiercache {

void CudaDevice::InitVirtualMemory() {
  auto without = [this](const std::string& why) {
    TC_LOG_WARN("CUDA device %d maps no virtual memory (%s); large blocks use separate segments",
                info_.ordinal, why.c_str());
  };
  Result<const CudaDriver*> loaded = LoadCudaDriver();
  if (!loaded.ok()) return without(loaded.status().message());
  const CudaDriver& driver = **loaded;
  if (Status status = UseDevice(); !status.ok()) return without(status.message());
  CUdevice device = 0;
  if (Status status = CudaDriverStatus(driver, driver.device_get(&device, info_.ordinal), "cuDeviceGet");
      !status.ok()) {
    return without(status.message());
  }
  int supported = 0;
  Status status = CudaDriverStatus(
      driver,
      driver.device_get_attribute(&supported, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, device),
      "cuDeviceGetAttribute(VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED)");
  if (!status.ok()) return without(status.message());
  if (supported == 0) return without("the device reports no virtual memory management support");
  CUmemAllocationProp prop = PinnedOnDevice(device);
  size_t granularity = 0;
  status = CudaDriverStatus(
      driver, driver.mem_get_allocation_granularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
      "cuMemGetAllocationGranularity");
  if (!status.ok()) return without(status.message());
  if (granularity == 0) return without("cuMemGetAllocationGranularity gave 0");
  driver_ = &driver;
  cu_device_ = device;
  granularity_ = granularity;
}

Status CudaDevice::CheckMappingRange(uintptr_t address, size_t bytes) const {
  if (granularity_ == 0) return Status::Unavailable("this CUDA device maps no virtual memory");
  if (bytes == 0 || bytes % granularity_ != 0 || address % granularity_ != 0) {
    return Status::InvalidArgument("address and size must be positive multiples of the granularity (" +
                                   std::to_string(granularity_) + " bytes)");
  }
  auto after = reservations_.upper_bound(address);
  if (after == reservations_.begin()) return Status::InvalidArgument("outside a reserved address range");
  auto range = std::prev(after);
  if (address - range->first > range->second || bytes > range->second - (address - range->first)) {
    return Status::InvalidArgument("outside a reserved address range");
  }
  return Status::Ok();
}

Status CudaDevice::UnmapGranules(std::map<uintptr_t, unsigned long long>* granules) {
  Status first = Status::Ok();
  for (auto it = granules->begin(); it != granules->end();) {
    Status status = CudaDriverStatus(*driver_, driver_->mem_unmap(it->first, granularity_), "cuMemUnmap");
    // A granule still mapped keeps its handle: releasing it would not free it.
    if (status.ok()) status = CudaDriverStatus(*driver_, driver_->mem_release(it->second), "cuMemRelease");
    if (status.ok()) {
      it = granules->erase(it);
    } else {
      if (first.ok()) first = status;
      ++it;
    }
  }
  return first;
}

Result<void*> CudaDevice::ReserveAddressRange(size_t bytes) {
  if (granularity_ == 0) return Status::Unavailable("this CUDA device maps no virtual memory");
  if (bytes == 0 || bytes % granularity_ != 0) {
    return Status::InvalidArgument("ReserveAddressRange of " + std::to_string(bytes) +
                                   " bytes: need a positive multiple of the granularity");
  }
  TC_RETURN_IF_ERROR(UseDevice());
  CUdeviceptr base = 0;
  TC_RETURN_IF_ERROR(CudaDriverStatus(*driver_, driver_->mem_address_reserve(&base, bytes, granularity_, 0, 0),
                                      "cuMemAddressReserve"));
  std::lock_guard<std::mutex> lock(vm_mutex_);
  reservations_[static_cast<uintptr_t>(base)] = bytes;
  return reinterpret_cast<void*>(static_cast<uintptr_t>(base));
}

Status CudaDevice::FreeAddressRange(void* base) {
  if (granularity_ == 0) return Status::Unavailable("this CUDA device maps no virtual memory");
  uintptr_t start = reinterpret_cast<uintptr_t>(base);
  size_t bytes = 0;
  std::map<uintptr_t, unsigned long long> granules;
  {
    std::lock_guard<std::mutex> lock(vm_mutex_);
    auto range = reservations_.find(start);
    if (range == reservations_.end()) return Status::InvalidArgument("FreeAddressRange of an unreserved address");
    bytes = range->second;
    auto first = mapped_.lower_bound(start), last = mapped_.lower_bound(start + bytes);
    granules.insert(first, last);
    mapped_.erase(first, last);
    reservations_.erase(range);
  }
  Status status = Status::Ok();
  if (!granules.empty()) {
    // Work enqueued before may still use the mapped memory, as with cudaFree.
    status = UseDevice();
    if (status.ok()) status = FromCuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    if (status.ok()) status = UnmapGranules(&granules);
  }
  if (status.ok()) {
    status = CudaDriverStatus(*driver_, driver_->mem_address_free(start, bytes), "cuMemAddressFree");
  }
  if (!status.ok()) {  // what is left stays known, so the caller may try again
    std::lock_guard<std::mutex> lock(vm_mutex_);
    reservations_[start] = bytes;
    mapped_.insert(granules.begin(), granules.end());
  }
  return status;
}

Status CudaDevice::MapMemory(void* address, size_t bytes) {
  uintptr_t start = reinterpret_cast<uintptr_t>(address);
  // Held throughout so two callers cannot map the same granule.
  std::lock_guard<std::mutex> lock(vm_mutex_);
  TC_RETURN_IF_ERROR(CheckMappingRange(start, bytes));
  if (auto it = mapped_.lower_bound(start); it != mapped_.end() && it->first < start + bytes) {
    return Status::InvalidArgument("MapMemory over mapped memory");
  }
  TC_RETURN_IF_ERROR(UseDevice());
  const CudaDriver& driver = *driver_;
  CUmemAllocationProp prop = PinnedOnDevice(cu_device_);
  std::map<uintptr_t, unsigned long long> granules;
  Status status = Status::Ok();
  for (uintptr_t granule = start; granule < start + bytes; granule += granularity_) {
    CUmemGenericAllocationHandle handle = 0;
    status = CudaDriverStatus(driver, driver.mem_create(&handle, granularity_, &prop, 0), "cuMemCreate");
    if (!status.ok()) break;
    status = CudaDriverStatus(driver, driver.mem_map(granule, granularity_, 0, handle, 0), "cuMemMap");
    if (!status.ok()) {
      (void)driver.mem_release(handle);
      break;
    }
    granules[granule] = handle;
  }
  if (status.ok()) {
    CUmemAccessDesc access{};
    access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    access.location.id = cu_device_;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    status = CudaDriverStatus(driver, driver.mem_set_access(start, bytes, &access, 1), "cuMemSetAccess");
  }
  if (!status.ok()) {
    // No work can have touched memory never handed out, so no wait is needed.
    (void)UnmapGranules(&granules);
    mapped_.insert(granules.begin(), granules.end());  // any left: FreeAddressRange retries them
    return status;
  }
  mapped_.insert(granules.begin(), granules.end());
  return Status::Ok();
}

Status CudaDevice::UnmapMemory(void* address, size_t bytes) {
  uintptr_t start = reinterpret_cast<uintptr_t>(address);
  std::map<uintptr_t, unsigned long long> granules;
  {
    std::lock_guard<std::mutex> lock(vm_mutex_);
    TC_RETURN_IF_ERROR(CheckMappingRange(start, bytes));
    for (uintptr_t granule = start; granule < start + bytes; granule += granularity_) {
      if (mapped_.count(granule) == 0) return Status::InvalidArgument("UnmapMemory of memory not mapped");
    }
    auto first = mapped_.lower_bound(start), last = mapped_.lower_bound(start + bytes);
    granules.insert(first, last);
    mapped_.erase(first, last);  // a concurrent unmap of the same range now fails
  }
  // Work enqueued before may still use the range: wait, as cudaFree does.
  Status status = UseDevice();
  if (status.ok()) status = FromCuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  if (!status.ok()) {  // still mapped and still ours
    std::lock_guard<std::mutex> lock(vm_mutex_);
    mapped_.insert(granules.begin(), granules.end());
    return status;
  }
  status = UnmapGranules(&granules);
  if (!granules.empty()) {  // those the driver refused to unmap are still mapped
    std::lock_guard<std::mutex> lock(vm_mutex_);
    mapped_.insert(granules.begin(), granules.end());
  }
  return status;
}

}  // namespace tiercache
