#include "alloc/cuda_driver.h"

#include <cuda_runtime_api.h>

#include <mutex>
#include <string>

namespace tiercache {
namespace {

// The driver ABI these pointer types were written against: the entry point
// returns the newest variant of each symbol compatible with CUDA 12.0.
constexpr unsigned int kDriverAbiVersion = 12000;

template <typename Function>
Status Lookup(const char* symbol, Function* function) {
  void* address = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  cudaError_t error =
      cudaGetDriverEntryPointByVersion(symbol, &address, kDriverAbiVersion, cudaEnableDefault, &found);
  if (error != cudaSuccess) {
    cudaGetLastError();  // not sticky; later runtime calls should not see it
    return Status::Unavailable(std::string("cudaGetDriverEntryPointByVersion(") + symbol +
                               "): " + cudaGetErrorName(error));
  }
  if (found != cudaDriverEntryPointSuccess || address == nullptr) {
    return Status::Unavailable(std::string("the CUDA driver has no ") + symbol +
                               (found == cudaDriverEntryPointVersionNotSufficent
                                    ? " for the requested version"
                                    : ""));
  }
  *function = reinterpret_cast<Function>(address);
  return Status::Ok();
}

Status LoadAll(CudaDriver* driver) {
  TC_RETURN_IF_ERROR(Lookup("cuGetErrorName", &driver->get_error_name));
  TC_RETURN_IF_ERROR(Lookup("cuDeviceGet", &driver->device_get));
  TC_RETURN_IF_ERROR(Lookup("cuDeviceGetAttribute", &driver->device_get_attribute));
  TC_RETURN_IF_ERROR(Lookup("cuMemGetAllocationGranularity", &driver->mem_get_allocation_granularity));
  TC_RETURN_IF_ERROR(Lookup("cuMemAddressReserve", &driver->mem_address_reserve));
  TC_RETURN_IF_ERROR(Lookup("cuMemAddressFree", &driver->mem_address_free));
  TC_RETURN_IF_ERROR(Lookup("cuMemCreate", &driver->mem_create));
  TC_RETURN_IF_ERROR(Lookup("cuMemRelease", &driver->mem_release));
  TC_RETURN_IF_ERROR(Lookup("cuMemMap", &driver->mem_map));
  TC_RETURN_IF_ERROR(Lookup("cuMemUnmap", &driver->mem_unmap));
  TC_RETURN_IF_ERROR(Lookup("cuMemSetAccess", &driver->mem_set_access));
  return Status::Ok();
}

}  // namespace

Result<const CudaDriver*> LoadCudaDriver() {
  static std::once_flag once;
  static CudaDriver driver;
  static Status loaded = Status::Ok();
  std::call_once(once, [] {
    CudaDriver candidate;
    loaded = LoadAll(&candidate);
    if (loaded.ok()) driver = candidate;
  });
  if (!loaded.ok()) return loaded;
  return static_cast<const CudaDriver*>(&driver);
}

Status CudaDriverStatus(const CudaDriver& driver, CUresult result, const char* what) {
  if (result == CUDA_SUCCESS) return Status::Ok();
  const char* name = nullptr;
  if (driver.get_error_name == nullptr || driver.get_error_name(result, &name) != CUDA_SUCCESS ||
      name == nullptr) {
    name = "unknown CUresult";
  }
  std::string message = std::string(what) + ": " + name + " (" + std::to_string(static_cast<int>(result)) + ")";
  switch (result) {
    case CUDA_ERROR_OUT_OF_MEMORY:
      return Status::OutOfMemory(message);
    case CUDA_ERROR_INVALID_VALUE:
    case CUDA_ERROR_INVALID_HANDLE:
    case CUDA_ERROR_INVALID_DEVICE:
    case CUDA_ERROR_NOT_MAPPED:
    case CUDA_ERROR_ALREADY_MAPPED:
      return Status::InvalidArgument(message);
    case CUDA_ERROR_NO_DEVICE:
    case CUDA_ERROR_NOT_INITIALIZED:
    case CUDA_ERROR_DEINITIALIZED:
    case CUDA_ERROR_STUB_LIBRARY:
      return Status::Unavailable(message);
    case CUDA_ERROR_NOT_SUPPORTED:
      return Status::Unsupported(message);
    default:
      return Status::Internal(message);
  }
}

}  // namespace tiercache
