#include "alloc/cuda_device.h"

#include <cuda_runtime_api.h>

#include <string>

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
  return std::shared_ptr<Device>(new CudaDevice(std::move(info)));
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
