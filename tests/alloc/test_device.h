// The device the allocator tests run on: the emulated device, or (built with
// TIERCACHE_TEST_CUDA) the real CUDA device, null when there is none.
#ifndef TIERCACHE_TESTS_ALLOC_TEST_DEVICE_H_
#define TIERCACHE_TESTS_ALLOC_TEST_DEVICE_H_

#include <memory>
#include <string>

#include "alloc/emulated_device.h"
#if TIERCACHE_TEST_CUDA && defined(TIERCACHE_HAVE_CUDA)
#include "alloc/cuda_device.h"
#endif

namespace tiercache {

inline std::shared_ptr<Device> MakeTestDevice(std::string* why) {
#if TIERCACHE_TEST_CUDA
#if defined(TIERCACHE_HAVE_CUDA)
  Result<std::shared_ptr<Device>> cuda = OpenCudaDevice(0);
  if (!cuda.ok()) *why = cuda.status().ToString();
  return cuda.ok() ? *cuda : nullptr;
#else
  *why = "built without CUDA";
  return nullptr;
#endif
#else
  EmulatedDeviceOptions options;
  options.total_memory = 2048ull << 20;
  return std::make_shared<EmulatedDevice>(options);
#endif
}

}  // namespace tiercache

#endif  // TIERCACHE_TESTS_ALLOC_TEST_DEVICE_H_
