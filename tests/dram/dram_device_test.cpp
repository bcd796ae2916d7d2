// The DRAM tier pinned through the device layer, the way the runtime wires
// it: Device::RegisterHost / UnregisterHost passed in as callbacks. Runs on
// the emulated device everywhere; dram_gpu_test does the same on a real GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "alloc/emulated_device.h"
#include "common/units.h"
#include "tiers/dram_tier.h"

namespace tiercache {
namespace {

DramTierOptions PinnedBy(Device& device, uint64_t capacity) {
  DramTierOptions options;
  options.name = "staging";
  options.capacity = capacity;
  options.pin = [&device](void* p, size_t n) { return device.RegisterHost(p, n); };
  options.unpin = [&device](void* p, size_t) { return device.UnregisterHost(p); };
  return options;
}

TEST(DramTierOnDevice, RegistersItsSlabsWithTheDeviceAndReleasesThem) {
  EmulatedDevice device;
  DramTierOptions options = PinnedBy(device, 8 * kMiB);
  options.pin_slab_bytes = 2 * kMiB;
  auto created = DramTier::Create(std::move(options));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::unique_ptr<DramTier> tier = std::move(created).value();
  Result<Extent> whole = tier->Allocate(tier->capacity());
  ASSERT_TRUE(whole.ok());
  auto* base = static_cast<unsigned char*>(tier->HostAddress(*whole));
  for (uint64_t offset = 0; offset < tier->capacity(); offset += 2 * kMiB) {
    EXPECT_TRUE(device.IsHostRegistered(base + offset, 2 * kMiB)) << offset;
  }
  EXPECT_EQ(4u, tier->dram_stats().slabs);
  tier.reset();
  EXPECT_FALSE(device.IsHostRegistered(base, 2 * kMiB));
}

TEST(DramTierOnDevice, CopiesFromTheTierCountAsPinned) {
  EmulatedDevice device;
  auto tier = DramTier::Create(PinnedBy(device, 4 * kMiB));
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  const uint64_t n = 1 * kMiB + 3;
  Result<Extent> extent = (*tier)->Allocate(n);
  ASSERT_TRUE(extent.ok());
  std::vector<unsigned char> in(n), out(n, 0);
  for (uint64_t i = 0; i < n; ++i) in[i] = static_cast<unsigned char>(i * 131 + 7);
  ASSERT_TRUE((*tier)->Write(*extent, 0, in.data(), n).ok());

  Result<void*> device_memory = device.AllocateMemory(n);
  ASSERT_TRUE(device_memory.ok());
  void* staged = (*tier)->HostAddress(*extent);
  ASSERT_TRUE(device.CopyAsync(*device_memory, staged, n, CopyKind::kHostToDevice, nullptr).ok());
  ASSERT_TRUE(device.CopyAsync(out.data(), *device_memory, n, CopyKind::kDeviceToHost, nullptr).ok());
  ASSERT_TRUE(device.StreamSynchronize(nullptr).ok());
  EXPECT_EQ(in, out);
  EmulatedDeviceStats stats = device.stats();
  EXPECT_EQ(1u, stats.pinned_host_copies) << "the copy out of the tier";
  EXPECT_EQ(1u, stats.pageable_host_copies) << "the copy into the plain vector";
  EXPECT_TRUE(device.FreeMemory(*device_memory).ok());
}

}  // namespace
}  // namespace tiercache
