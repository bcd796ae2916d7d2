// FaultInjectingDevice: a Device that forwards every call to another Device
// and lets a FaultInjector (common/fault_injector.h) fail some of them, so
// tests drive device faults through the same seam the runtime uses.
//
// Sites consulted (target "device"):
//   kDeviceAllocate      AllocateMemory, MapMemory: kOutOfMemory (any
//                        action but kDelay) fails the call, nothing allocated
//   kDeviceRegisterHost  RegisterHost(ReadOnly): kRefuse (or any action but kDelay)
//                        fails it with kPermissionDenied, as a driver that
//                        refuses to lock pages does
// kDelay sleeps, then forwards. Everything else forwards unchanged.
//
// Thread safety: as Device; the injector is shared and thread-safe.
#ifndef TIERCACHE_ALLOC_FAULT_INJECTING_DEVICE_H_
#define TIERCACHE_ALLOC_FAULT_INJECTING_DEVICE_H_

#include <memory>

#include "alloc/device.h"
#include "common/fault_injector.h"

namespace tiercache {

class FaultInjectingDevice final : public Device {
 public:
  // REQUIRES: inner and faults non-null.
  FaultInjectingDevice(std::shared_ptr<Device> inner, std::shared_ptr<FaultInjector> faults);

  Device& inner() const { return *inner_; }
  FaultInjector& faults() const { return *faults_; }

  const DeviceInfo& info() const override { return inner_->info(); }
  Result<void*> AllocateMemory(size_t bytes) override;
  Status FreeMemory(void* p) override { return inner_->FreeMemory(p); }
  Result<uint64_t> FreeMemoryBytes() override { return inner_->FreeMemoryBytes(); }
  uint64_t MappingGranularity() const override { return inner_->MappingGranularity(); }
  Result<void*> ReserveAddressRange(size_t bytes) override {
    return inner_->ReserveAddressRange(bytes);
  }
  Status FreeAddressRange(void* base) override { return inner_->FreeAddressRange(base); }
  Status MapMemory(void* address, size_t bytes) override;
  Status UnmapMemory(void* address, size_t bytes) override {
    return inner_->UnmapMemory(address, bytes);
  }
  Status RegisterHost(void* p, size_t n) override;
  Status RegisterHostReadOnly(const void* p, size_t n) override;
  Status UnregisterHost(void* p) override { return inner_->UnregisterHost(p); }
  Result<Stream> CreateStream() override { return inner_->CreateStream(); }
  Result<Stream> CreateStreamWithPriority(int priority) override {
    return inner_->CreateStreamWithPriority(priority);
  }
  Status DestroyStream(Stream s) override { return inner_->DestroyStream(s); }
  uint64_t DestroyedStreamCount() const override { return inner_->DestroyedStreamCount(); }
  bool IsStreamLive(Stream s) const override { return inner_->IsStreamLive(s); }
  Result<Event> CreateEvent() override { return inner_->CreateEvent(); }
  Status DestroyEvent(Event e) override { return inner_->DestroyEvent(e); }
  Status CopyAsync(void* d, const void* s, size_t n, CopyKind k, Stream st) override {
    return inner_->CopyAsync(d, s, n, k, st);
  }
  Status MemsetAsync(void* d, int v, size_t n, Stream s) override {
    return inner_->MemsetAsync(d, v, n, s);
  }
  Status LaunchHostFunc(Stream s, void (*fn)(void*), void* arg) override {
    return inner_->LaunchHostFunc(s, fn, arg);
  }
  Status DecodeAsync(const codec::Bf16DecodeJob& job, Stream s) override {
    return inner_->DecodeAsync(job, s);
  }
  Status RecordEvent(Event e, Stream s) override { return inner_->RecordEvent(e, s); }
  Status StreamWaitEvent(Stream s, Event e) override { return inner_->StreamWaitEvent(s, e); }
  Result<bool> EventQuery(Event e) override { return inner_->EventQuery(e); }
  Status EventSynchronize(Event e) override { return inner_->EventSynchronize(e); }
  Status StreamSynchronize(Stream s) override { return inner_->StreamSynchronize(s); }

 private:
  // The injected failure for `site`, or Ok (after any injected delay).
  Status Injected(FaultSite site);

  std::shared_ptr<Device> inner_;
  std::shared_ptr<FaultInjector> faults_;
};

}  // namespace tiercache

#endif  // TIERCACHE_ALLOC_FAULT_INJECTING_DEVICE_H_
