// CudaDriver: the CUDA driver functions the CUDA device needs, reached
// without linking libcuda.
//
// Contract: LoadCudaDriver() looks every function up once through the
// runtime's cudaGetDriverEntryPointByVersion (so the library keeps linking
// only the shared cudart and still loads on a machine with no driver) and
// returns the table, or kUnavailable naming the first symbol the driver
// lacks; the answer is cached for the process. <cuda.h> is included for its
// types only. CudaDriverStatus() turns a CUresult into a Status that carries
// the driver's error name (CUDA_ERROR_OUT_OF_MEMORY is kOutOfMemory, bad
// values and handles kInvalidArgument, a missing or deinitialised driver
// kUnavailable, CUDA_ERROR_NOT_SUPPORTED kUnsupported, the rest kInternal).
// Built only with TIERCACHE_WITH_CUDA.
//
// Thread safety: LoadCudaDriver() may be called from any thread (the first
// call does the lookup, the others wait for it); the table is immutable.
#ifndef TIERCACHE_ALLOC_CUDA_DRIVER_H_
#define TIERCACHE_ALLOC_CUDA_DRIVER_H_

#include <cuda.h>

#include "common/status.h"

namespace tiercache {

struct CudaDriver {
  CUresult (*get_error_name)(CUresult, const char**) = nullptr;
  CUresult (*device_get)(CUdevice*, int) = nullptr;
  CUresult (*device_get_attribute)(int*, CUdevice_attribute, CUdevice) = nullptr;
  CUresult (*mem_get_allocation_granularity)(size_t*, const CUmemAllocationProp*,
                                             CUmemAllocationGranularity_flags) = nullptr;
  CUresult (*mem_address_reserve)(CUdeviceptr*, size_t, size_t, CUdeviceptr, unsigned long long) = nullptr;
  CUresult (*mem_address_free)(CUdeviceptr, size_t) = nullptr;
  CUresult (*mem_create)(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*,
                         unsigned long long) = nullptr;
  CUresult (*mem_release)(CUmemGenericAllocationHandle) = nullptr;
  CUresult (*mem_map)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long) = nullptr;
  CUresult (*mem_unmap)(CUdeviceptr, size_t) = nullptr;
  CUresult (*mem_set_access)(CUdeviceptr, size_t, const CUmemAccessDesc*, size_t) = nullptr;
};

// The driver's function table, or kUnavailable with the reason.
Result<const CudaDriver*> LoadCudaDriver();

// Ok for CUDA_SUCCESS, else a Status whose message is "what: CUDA_ERROR_...".
Status CudaDriverStatus(const CudaDriver& driver, CUresult result, const char* what);

}  // namespace tiercache

#endif  // TIERCACHE_ALLOC_CUDA_DRIVER_H_
