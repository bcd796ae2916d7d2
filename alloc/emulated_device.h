// EmulatedDevice: a Device made of host memory and threads, so that every
// test that needs a GPU's ordering rules runs on a machine without one.
//
// Contract
// - "Device memory" is host memory handed out by AllocateMemory (256-byte
//   aligned, like cudaMalloc) and recorded in a registry of live
//   allocations. CopyAsync/MemsetAsync check at enqueue time that every
//   device-side range lies inside one live allocation (a foreign pointer, an
//   overrun or a use after FreeMemory gives kInvalidArgument), and that a
//   host-side pointer is not device memory.
// - Each stream owns one worker thread that runs its work in enqueue order.
//   RecordEvent enqueues a marker; the event completes when the stream's
//   worker reaches it. StreamWaitEvent enqueues a wait on the stream's own
//   worker and returns at once. LaunchHostFunc runs fn on the worker.
// - FreeMemory first waits for every stream's enqueued work (cudaFree
//   synchronises the device too), so freed memory is never written late.
// - DestroyStream drains the stream, joins its worker and retires the handle;
//   handles are never reused, so a stale handle is always detected.
// - Ordering bugs are made visible by `copy_delay`: each copy and memset
//   enqueued while it is set sleeps that long before touching memory, so a consumer on another stream
//   that forgot StreamWaitEvent reads stale bytes reliably.
// - The host registry records RegisterHost ranges; copies count how many
//   host-side transfers used registered (pinned) memory.
//
// Thread safety: every method may be called from any thread.
#ifndef TIERCACHE_ALLOC_EMULATED_DEVICE_H_
#define TIERCACHE_ALLOC_EMULATED_DEVICE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_set>
#include <vector>

#include "alloc/device.h"

namespace tiercache {

struct EmulatedDeviceOptions {
  // What the device reports as its memory; AllocateMemory beyond it fails
  // with kOutOfMemory. 0: TIERCACHE_EMULATED_MEMORY (ParseBytes), else 16 GiB.
  // Pages are only touched when written, so a large figure costs nothing.
  uint64_t total_memory = 0;
  // Sleep before each copy or memset runs (see the contract above).
  std::chrono::microseconds copy_delay{0};
  int ordinal = 0;
};

// Counters since the device was created. A snapshot.
struct EmulatedDeviceStats {
  uint64_t live_allocations = 0;
  uint64_t allocated_bytes = 0;
  uint64_t copies = 0;
  uint64_t memsets = 0;
  uint64_t host_funcs = 0;
  uint64_t decodes = 0;
  uint64_t pinned_host_copies = 0;    // host side inside a registered range
  uint64_t pageable_host_copies = 0;  // host side not registered
  uint64_t live_streams = 0;
  uint64_t live_events = 0;
  // Calls that named a stream never created or already destroyed: refused
  // here, undefined on a real GPU (the driver may fault), so code under test
  // must make none.
  uint64_t unknown_stream_calls = 0;
};

class EmulatedDevice final : public Device {
 public:
  explicit EmulatedDevice(EmulatedDeviceOptions options = {});
  ~EmulatedDevice() override;
  EmulatedDevice(const EmulatedDevice&) = delete;
  EmulatedDevice& operator=(const EmulatedDevice&) = delete;

  const DeviceInfo& info() const override { return info_; }

  Result<void*> AllocateMemory(size_t bytes) override;
  Status FreeMemory(void* pointer) override;
  Result<uint64_t> FreeMemoryBytes() override;
  // Virtual memory in host address space: a reservation is PROT_NONE
  // pages; mapping makes them readable and writable (and device memory for
  // the range checks, adjacent mappings joining into one range), unmapping
  // drains the streams, drops the pages and protects them again.
  uint64_t MappingGranularity() const override { return kMappingGranularity; }
  Result<void*> ReserveAddressRange(size_t bytes) override;
  Status FreeAddressRange(void* base) override;
  Status MapMemory(void* address, size_t bytes) override;
  Status UnmapMemory(void* address, size_t bytes) override;
  static constexpr uint64_t kMappingGranularity = 2ull << 20;  // as cuMem on current GPUs

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
  // The CPU decoder (codec/bf16_decoder.h) on the stream's worker; the job's
  // directory, records, output and error word must lie in device memory.
  Status DecodeAsync(const codec::Bf16DecodeJob& job, Stream stream) override;

  Status RecordEvent(Event event, Stream stream) override;
  Status StreamWaitEvent(Stream stream, Event event) override;
  Result<bool> EventQuery(Event event) override;
  Status EventSynchronize(Event event) override;
  Status StreamSynchronize(Stream stream) override;

  // --- for tests -----------------------------------------------------------
  void set_copy_delay(std::chrono::microseconds delay) { copy_delay_us_.store(delay.count()); }
  // True when [pointer, pointer + bytes) lies inside one live allocation.
  bool IsDeviceRange(const void* pointer, size_t bytes) const;
  // True when [pointer, pointer + bytes) lies inside one registered range.
  bool IsHostRegistered(const void* pointer, size_t bytes) const;
  EmulatedDeviceStats stats() const;

  struct StreamState;  // defined in the .cpp
  struct EventState;

 private:
  // The entry of `ranges` containing [pointer, pointer + bytes), or end().
  static std::map<uintptr_t, size_t>::const_iterator FindContaining(
      const std::map<uintptr_t, size_t>& ranges, const void* pointer, size_t bytes);
  Result<StreamState*> FindStream(Stream stream) const;
  Result<EventState*> FindEvent(Event event) const;
  Status CheckDeviceRange(const void* pointer, size_t bytes, const char* what) const;
  Status CheckHostRange(const void* pointer, size_t bytes, const char* what);
  Status SynchronizeAll();

  DeviceInfo info_;
  std::atomic<int64_t> copy_delay_us_{0};

  mutable std::shared_mutex memory_mutex_;
  std::map<uintptr_t, size_t> allocations_;  // start -> bytes, live only
  std::map<uintptr_t, size_t> registered_;   // start -> bytes
  std::map<uintptr_t, size_t> reservations_;  // address ranges: start -> bytes
  uint64_t allocated_bytes_ = 0;

  mutable std::shared_mutex handles_mutex_;
  std::unique_ptr<StreamState> default_stream_;
  std::unordered_set<StreamState*> streams_;               // live, not default
  std::vector<std::unique_ptr<StreamState>> retired_streams_;  // never reused
  std::unordered_set<EventState*> events_;
  std::atomic<uint64_t> destroyed_streams_{0};

  std::atomic<uint64_t> copies_{0}, memsets_{0}, host_funcs_{0}, decodes_{0};
  mutable std::atomic<uint64_t> unknown_stream_calls_{0};
  std::atomic<uint64_t> pinned_copies_{0}, pageable_copies_{0};

  friend struct StreamState;
};

}  // namespace tiercache

#endif  // TIERCACHE_ALLOC_EMULATED_DEVICE_H_
