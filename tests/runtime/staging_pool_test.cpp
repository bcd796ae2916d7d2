// StagingPool: slots carved from the DRAM tier (exactly slots x slot_bytes
// of it), handed out in ring order, each with its own side area outside
// the tier when asked for one.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "runtime/staging_pool.h"
#include "tests/runtime/runtime_test_util.h"

namespace tiercache {
namespace {

TEST(StagingPoolTest, SlotsComeFromTheDramTierAndSideAreasFromOutsideIt) {
  EmulatedDeviceOptions options;
  options.total_memory = 256 * kMiB;
  auto device = std::make_shared<EmulatedDevice>(options);
  DramTierOptions dram_options;
  dram_options.capacity = 4 * kMiB;
  dram_options.allow_membind = false;
  std::unique_ptr<DramTier> dram = DramTier::Create(dram_options).value();
  Result<std::unique_ptr<StagingPool>> pool = StagingPool::Create(device, dram.get(), false, 256 * kKiB, 3, 5000);
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  StagingPool& p = **pool;
  EXPECT_EQ(3u * 256 * kKiB, dram->used());  // side areas are not in the tier
  EXPECT_EQ(8192u, p.side_bytes());           // rounded up to 4 KiB
  std::set<unsigned char*> sides;
  for (int i = 0; i < 3; ++i) {
    StagingPool::Slot* slot = p.Acquire().value();
    EXPECT_EQ(i, slot->index);
    ASSERT_NE(nullptr, slot->side);
    EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(slot->side) % 4096);
    std::memset(slot->side, i, p.side_bytes());  // writable, whole
    std::memset(slot->data, i, p.slot_bytes());
    sides.insert(slot->side);
    p.Release(slot, false);
  }
  EXPECT_EQ(3u, sides.size());
  // Without side bytes, no side areas.
  pool->reset();
  EXPECT_EQ(0u, dram->used());
  std::unique_ptr<StagingPool> plain = StagingPool::Create(device, dram.get(), false, 256 * kKiB, 2).value();
  StagingPool::Slot* slot = plain->Acquire().value();
  EXPECT_EQ(nullptr, slot->side);
  plain->Release(slot, false);
  EXPECT_EQ(ErrorCode::kInvalidArgument, StagingPool::Create(device, dram.get(), false, 0, 2).status().code());
}

}  // namespace
}  // namespace tiercache
