#include "alloc/fault_injecting_device.h"

#include <thread>
#include <utility>

#include "common/check.h"

namespace tiercache {

FaultInjectingDevice::FaultInjectingDevice(std::shared_ptr<Device> inner,
                                           std::shared_ptr<FaultInjector> faults)
    : inner_(std::move(inner)), faults_(std::move(faults)) {
  TC_CHECK(inner_ != nullptr && faults_ != nullptr, "FaultInjectingDevice needs a device and an injector");
}

Status FaultInjectingDevice::Injected(FaultSite site) {
  const InjectedFault fault = faults_->Next(site, "device");
  if (!fault) return Status::Ok();
  if (fault.action == FaultAction::kDelay) {
    std::this_thread::sleep_for(fault.delay);
    return Status::Ok();
  }
  if (site == FaultSite::kDeviceRegisterHost) {
    return Status::PermissionDenied("injected: the driver refused to lock the pages");
  }
  return Status::OutOfMemory("injected device allocation failure");
}

Result<void*> FaultInjectingDevice::AllocateMemory(size_t bytes) {
  TC_RETURN_IF_ERROR(Injected(FaultSite::kDeviceAllocate));
  return inner_->AllocateMemory(bytes);
}

Status FaultInjectingDevice::MapMemory(void* address, size_t bytes) {
  TC_RETURN_IF_ERROR(Injected(FaultSite::kDeviceAllocate));
  return inner_->MapMemory(address, bytes);
}

Status FaultInjectingDevice::RegisterHost(void* p, size_t n) {
  TC_RETURN_IF_ERROR(Injected(FaultSite::kDeviceRegisterHost));
  return inner_->RegisterHost(p, n);
}

Status FaultInjectingDevice::RegisterHostReadOnly(const void* p, size_t n) {
  TC_RETURN_IF_ERROR(Injected(FaultSite::kDeviceRegisterHost));
  return inner_->RegisterHostReadOnly(p, n);
}

}  // namespace tiercache
