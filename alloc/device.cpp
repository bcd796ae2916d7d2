// OpenDevice: picks the CUDA device or the emulated one (see device.h).
#include "alloc/device.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "alloc/emulated_device.h"
#include "common/log.h"
#if defined(TIERCACHE_HAVE_CUDA)
#include "alloc/cuda_device.h"
#endif

namespace tiercache {
namespace {

enum class Choice { kAuto, kEmulated, kCuda };

Result<Choice> ChoiceFromEnvironment() {
  const char* value = std::getenv("TIERCACHE_DEVICE");
  if (value == nullptr || *value == '\0' || std::strcmp(value, "auto") == 0) return Choice::kAuto;
  if (std::strcmp(value, "emulated") == 0) return Choice::kEmulated;
  if (std::strcmp(value, "cuda") == 0) return Choice::kCuda;
  return Status::InvalidArgument(std::string("TIERCACHE_DEVICE=") + value +
                                 ": expected emulated, cuda or auto");
}

Result<std::shared_ptr<Device>> OpenCuda(int ordinal) {
#if defined(TIERCACHE_HAVE_CUDA)
  return OpenCudaDevice(ordinal);
#else
  return Status::Unavailable("tiercache was built without CUDA (TIERCACHE_WITH_CUDA=OFF)");
#endif
}

// Devices handed out and still alive, so one process shares one per
// (kind, ordinal) as device.h promises.
struct DeviceCache {
  std::mutex mutex;
  std::map<std::pair<DeviceKind, int>, std::weak_ptr<Device>> devices;
};

DeviceCache& Cache() {
  static DeviceCache* cache = new DeviceCache();  // never destroyed: usable at exit
  return *cache;
}

Result<std::shared_ptr<Device>> OpenFresh(Choice choice, int ordinal, DeviceKind* kind) {
  if (choice == Choice::kEmulated) {
    *kind = DeviceKind::kEmulated;
    EmulatedDeviceOptions options;
    options.ordinal = ordinal;
    return std::shared_ptr<Device>(std::make_shared<EmulatedDevice>(options));
  }
  *kind = DeviceKind::kCuda;
  Result<std::shared_ptr<Device>> cuda = OpenCuda(ordinal);
  if (cuda.ok() || choice == Choice::kCuda) return cuda;
  if (cuda.status().code() == ErrorCode::kInvalidArgument) return cuda;  // a bad ordinal stays an error
  RecordFallback("device", "no usable CUDA device (" + cuda.status().message() +
                               "); using the emulated device");
  return OpenFresh(Choice::kEmulated, ordinal, kind);
}

}  // namespace

Result<std::shared_ptr<Device>> OpenDevice(int ordinal) {
  if (ordinal < 0) return Status::InvalidArgument("device ordinal must be >= 0");
  TC_ASSIGN_OR_RETURN(Choice choice, ChoiceFromEnvironment());
  DeviceCache& cache = Cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  // Reuse a live device of the kind this choice would produce.
  for (DeviceKind kind : {DeviceKind::kCuda, DeviceKind::kEmulated}) {
    if (choice == Choice::kEmulated && kind == DeviceKind::kCuda) continue;
    if (choice == Choice::kCuda && kind == DeviceKind::kEmulated) continue;
    auto it = cache.devices.find({kind, ordinal});
    if (it == cache.devices.end()) continue;
    if (std::shared_ptr<Device> device = it->second.lock()) return device;
  }
  DeviceKind kind;
  TC_ASSIGN_OR_RETURN(std::shared_ptr<Device> device, OpenFresh(choice, ordinal, &kind));
  cache.devices[{device->info().kind, ordinal}] = device;
  return device;
}

}  // namespace tiercache
