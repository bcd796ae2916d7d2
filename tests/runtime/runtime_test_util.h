// Test helpers for the runtime: deterministic block contents, a staged tier
// with a fault injector attached, and a fixture that builds a cache over the
// emulated device behind the fault-injecting device.
#ifndef TIERCACHE_TESTS_RUNTIME_RUNTIME_TEST_UTIL_H_
#define TIERCACHE_TESTS_RUNTIME_RUNTIME_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "alloc/device_allocator.h"
#include "alloc/emulated_device.h"
#include "alloc/fault_injecting_device.h"
#include "common/fault_injector.h"
#include "common/units.h"
#include "prefetch/access_predictor.h"
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
// NVMe), with its own FaultInjector attached: tests script its faults.
class FaultyTier : public Tier {
 public:
  FaultyTier(std::string name, uint64_t capacity)
      : Tier(std::move(name), TierKind::kNvme, AlignUp(capacity, 4096), 4096),
        bytes_(AlignUp(capacity, 4096)) {
    SetFaultInjector(&faults);
  }
  ~FaultyTier() override { SetFaultInjector(nullptr); }

  FaultInjector faults;

  // The next n reads (-1: every read until Heal()) act out `action`.
  void FailNextReads(int64_t n, FaultAction action = FaultAction::kIoError) {
    FaultRule rule;
    rule.site = FaultSite::kTierRead;
    rule.action = action;
    rule.count = n;
    faults.Add(rule);
  }
  void Heal() { faults.Clear(); }
  uint64_t reads_seen() const { return stats().reads; }
  uint64_t faults_injected() const { return faults.injected_total(); }

 protected:
  Status ReadImpl(uint64_t address, void* dst, uint64_t bytes) override {
    std::memcpy(dst, bytes_.data() + address, bytes);
    return Status::Ok();
  }
  Status WriteImpl(uint64_t address, const void* src, uint64_t bytes) override {
    std::memcpy(bytes_.data() + address, src, bytes);
    return Status::Ok();
  }

 private:
  std::vector<unsigned char> bytes_;
};

// Knows a repeating order exactly, as an engine's recorded schedule would:
// the predictor the cache consults after each acquire. Its lookahead is
// `depth` (by default unbounded: the config's cap decides).
class CyclePredictor final : public AccessPredictor {
 public:
  explicit CyclePredictor(std::vector<BlockId> cycle, size_t depth = SIZE_MAX)
      : cycle_(std::move(cycle)), depth_(depth) {}
  size_t Lookahead(uint64_t, double) override { return depth_; }
  void OnAccess(BlockId id, uint64_t, uint64_t) override {
    pos_ = static_cast<size_t>(std::find(cycle_.begin(), cycle_.end(), id) - cycle_.begin());
  }
  void Hint(const std::vector<BlockId>&) override {}
  std::vector<BlockId> PredictNext(size_t max_blocks) override {
    std::vector<BlockId> out;
    for (size_t j = 1; j <= std::min(max_blocks, cycle_.size()); ++j) {
      out.push_back(cycle_[(pos_ + j) % cycle_.size()]);
    }
    return out;
  }
  uint64_t PredictDistance(BlockId id) override {
    const size_t n = cycle_.size();
    const size_t at =
        static_cast<size_t>(std::find(cycle_.begin(), cycle_.end(), id) - cycle_.begin());
    return at == n ? kNeverUsedAgain : (at + n - pos_ - 1) % n + 1;
  }

 private:
  std::vector<BlockId> cycle_;
  size_t depth_;
  size_t pos_ = 0;
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

// A cache over an EmulatedDevice behind a FaultInjectingDevice (device_faults
// scripts its failures), a pinned DRAM tier, and whatever home tiers a test
// attaches.
struct CacheRig {
  std::shared_ptr<EmulatedDevice> emulated;
  std::shared_ptr<FaultInjector> device_faults = std::make_shared<FaultInjector>();
  std::shared_ptr<FaultInjectingDevice> device;
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
    emulated = std::make_shared<EmulatedDevice>(options);
    device = std::make_shared<FaultInjectingDevice>(emulated, device_faults);
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
    device_faults->Clear();
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
