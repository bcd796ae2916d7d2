// Test helpers for the runtime: deterministic block contents, a tier that
// injects read faults, a device whose allocations can be made to fail, and
// a fixture that builds a cache over the emulated device.
#ifndef TIERCACHE_TESTS_RUNTIME_RUNTIME_TEST_UTIL_H_
#define TIERCACHE_TESTS_RUNTIME_RUNTIME_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "alloc/device_allocator.h"
#include "alloc/emulated_device.h"
#include "common/units.h"
#include "runtime/block_cache.h"
#include "tiers/dram_tier.h"
#include "tiers/memory_tier.h"

namespace tiercache::testing {

// Position- and seed-dependent bytes, so misplaced or stale data is caught.
inline std::vector<unsigned char> Pattern(uint64_t bytes, uint64_t seed) {
  std::vector<unsigned char> out(bytes);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint64_t i = 0; i < bytes; ++i) {
    if ((i & 7) == 0) x = x * 6364136223846793005ull + 1442695040888963407ull;
    out[i] = static_cast<unsigned char>(x >> ((i & 7) * 8));
  }
  return out;
}

// A heap-backed tier that is not byte-addressable (so reads are staged, like
// NVMe) and can inject faults into its next reads.
class FaultyTier : public Tier {
 public:
  FaultyTier(std::string name, uint64_t capacity)
      : Tier(std::move(name), TierKind::kNvme, AlignUp(capacity, 4096), 4096),
        bytes_(AlignUp(capacity, 4096)) {}

  std::atomic<int> fail_reads{0};     // next N reads return kIoError
  std::atomic<int> short_reads{0};    // next N reads fill only half and report success
  std::atomic<int> corrupt_reads{0};  // next N reads flip a byte and report success
  std::atomic<int> reads_seen{0};

 protected:
  Status ReadImpl(uint64_t address, void* dst, uint64_t bytes) override {
    reads_seen.fetch_add(1);
    if (Take(fail_reads)) return Status::IoError(name() + ": injected read error");
    if (Take(short_reads)) {
      std::memcpy(dst, bytes_.data() + address, bytes / 2);
      std::memset(static_cast<char*>(dst) + bytes / 2, 0, bytes - bytes / 2);
      return Status::Ok();
    }
    std::memcpy(dst, bytes_.data() + address, bytes);
    if (Take(corrupt_reads)) static_cast<unsigned char*>(dst)[bytes / 3] ^= 0x40;
    return Status::Ok();
  }
  Status WriteImpl(uint64_t address, const void* src, uint64_t bytes) override {
    std::memcpy(bytes_.data() + address, src, bytes);
    return Status::Ok();
  }

 private:
  static bool Take(std::atomic<int>& counter) {
    int n = counter.load();
    while (n > 0) {
      if (counter.compare_exchange_weak(n, n - 1)) return true;
    }
    return false;
  }
  std::vector<unsigned char> bytes_;
};

// Forwards to an EmulatedDevice; AllocateMemory fails while fail_allocations.
class FaultyDevice final : public Device {
 public:
  explicit FaultyDevice(EmulatedDeviceOptions options) : inner_(options) {}
  std::atomic<bool> fail_allocations{false};
  EmulatedDevice& inner() { return inner_; }

  const DeviceInfo& info() const override { return inner_.info(); }
  Result<void*> AllocateMemory(size_t bytes) override {
    if (fail_allocations.load()) return Status::OutOfMemory("injected device allocation failure");
    return inner_.AllocateMemory(bytes);
  }
  Status FreeMemory(void* p) override { return inner_.FreeMemory(p); }
  Result<uint64_t> FreeMemoryBytes() override { return inner_.FreeMemoryBytes(); }
  Status RegisterHost(void* p, size_t n) override { return inner_.RegisterHost(p, n); }
  Status UnregisterHost(void* p) override { return inner_.UnregisterHost(p); }
  Result<Stream> CreateStream() override { return inner_.CreateStream(); }
  Result<Stream> CreateStreamWithPriority(int priority) override {
    return inner_.CreateStreamWithPriority(priority);
  }
  Status DestroyStream(Stream s) override { return inner_.DestroyStream(s); }
  uint64_t DestroyedStreamCount() const override { return inner_.DestroyedStreamCount(); }
  bool IsStreamLive(Stream s) const override { return inner_.IsStreamLive(s); }
  Result<Event> CreateEvent() override { return inner_.CreateEvent(); }
  Status DestroyEvent(Event e) override { return inner_.DestroyEvent(e); }
  Status CopyAsync(void* d, const void* s, size_t n, CopyKind k, Stream st) override {
    return inner_.CopyAsync(d, s, n, k, st);
  }
  Status MemsetAsync(void* d, int v, size_t n, Stream s) override {
    return inner_.MemsetAsync(d, v, n, s);
  }
  Status LaunchHostFunc(Stream s, void (*fn)(void*), void* arg) override {
    return inner_.LaunchHostFunc(s, fn, arg);
  }
  Status DecodeAsync(const codec::Bf16DecodeJob& job, Stream s) override {
    return inner_.DecodeAsync(job, s);
  }
  Status RecordEvent(Event e, Stream s) override { return inner_.RecordEvent(e, s); }
  Status StreamWaitEvent(Stream s, Event e) override { return inner_.StreamWaitEvent(s, e); }
  Result<bool> EventQuery(Event e) override { return inner_.EventQuery(e); }
  Status EventSynchronize(Event e) override { return inner_.EventSynchronize(e); }
  Status StreamSynchronize(Stream s) override { return inner_.StreamSynchronize(s); }

 private:
  EmulatedDevice inner_;
};

// Small sizes so every path (multi-chunk, ring reuse) runs in milliseconds.
inline RuntimeConfig SmallConfig() {
  RuntimeConfig c;
  c.chunk_bytes = 64 * kKiB;
  c.staging_buffers = 3;
  c.dram_bytes = 8 * kMiB;
  c.acquire_wait_ms = 2000;
  return c;
}

// A cache over a FaultyDevice (an EmulatedDevice unless told to fail), a
// pinned DRAM tier, and whatever home tiers a test attaches.
struct CacheRig {
  std::shared_ptr<FaultyDevice> device;
  std::unique_ptr<DeviceAllocator> allocator;
  std::unique_ptr<DramTier> dram;
  std::vector<std::unique_ptr<Tier>> homes;  // declared first: outlive the cache
  std::unique_ptr<BlockCache> cache;
  Stream stream = nullptr;  // the "engine's" compute stream

  explicit CacheRig(RuntimeConfig config = SmallConfig(), uint64_t budget = 64 * kMiB,
                    std::chrono::microseconds copy_delay = std::chrono::microseconds(0)) {
    EmulatedDeviceOptions options;
    options.total_memory = 1 * kGiB;
    options.copy_delay = copy_delay;
    device = std::make_shared<FaultyDevice>(options);
    DeviceAllocatorOptions alloc_options;
    alloc_options.budget_bytes = budget;
    allocator = DeviceAllocator::Create(device, alloc_options).value();
    DramTierOptions dram_options;
    dram_options.capacity = config.dram_bytes;
    dram_options.allow_membind = false;
    Device* raw = device.get();
    dram_options.pin = [raw](void* p, size_t n) { return raw->RegisterHost(p, n); };
    dram_options.unpin = [raw](void* p, size_t) { return raw->UnregisterHost(p); };
    dram = DramTier::Create(dram_options).value();
    cache = BlockCache::Create(device, allocator.get(), config, dram.get(), dram->pinned()).value();
    stream = device->CreateStream().value();
  }
  ~CacheRig() {
    (void)device->StreamSynchronize(stream);
    cache.reset();
    (void)device->DestroyStream(stream);
  }

  // Keeps `tier` alive for the cache's life and attaches it.
  template <typename T>
  T* Adopt(std::unique_ptr<T> tier, bool device_registered = false) {
    T* raw = tier.get();
    if (raw == nullptr) return nullptr;
    homes.push_back(std::move(tier));
    EXPECT_TRUE(cache->AttachTier(raw, device_registered).ok());
    return raw;
  }

  // Reads `bytes` of device memory back through `stream` (after whatever
  // was enqueued there) and returns them.
  std::vector<unsigned char> ReadBack(const void* device_ptr, uint64_t bytes, Stream on = nullptr) {
    std::vector<unsigned char> host(bytes);
    Stream s = on != nullptr ? on : stream;
    EXPECT_TRUE(device->CopyAsync(host.data(), device_ptr, bytes, CopyKind::kDeviceToHost, s).ok());
    EXPECT_TRUE(device->StreamSynchronize(s).ok());
    return host;
  }
};

}  // namespace tiercache::testing

#endif  // TIERCACHE_TESTS_RUNTIME_RUNTIME_TEST_UTIL_H_
