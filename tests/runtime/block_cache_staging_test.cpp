// BlockCache's DRAM staging: predicted next blocks from slow homes read
// into verified DRAM copies ahead of use, failures that leave no copy, and
// short DRAM room shared with demotions.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/block_cache.h"
#include "tests/runtime/runtime_test_util.h"

namespace tiercache {
namespace {

using testing::CacheRig;
using testing::CyclePredictor;
using testing::FaultyTier;
using testing::Pattern;
using testing::SmallConfig;

// A cyclic scan over NVMe-homed blocks through a GPU cache of half the
// cycle, with DRAM room for the rest: the predicted next blocks are staged
// into DRAM copies ahead of use, so after the first cycle the GPU's loads
// come from DRAM and the NVMe home is no longer read. Demotion is off so
// that staging is the only way a DRAM copy can arise; before staging, every
// load of the 9 blocks rotating through the GPU read NVMe.

// A next-use GPU cache of `gpu_cache_bytes` with GPU prefetch 2 deep and
// DRAM staging 8 deep.
RuntimeConfig StagingConfig(uint64_t gpu_cache_bytes) {
  RuntimeConfig config = SmallConfig();
  config.gpu_cache_bytes = gpu_cache_bytes;
  config.gpu_policy = "next-use";
  config.prefetch_lookahead = 2;
  config.dram_prefetch_lookahead = 8;
  return config;
}

// `count` blocks named prefix0, prefix1, ... homed on `home`, block i
// holding Pattern(bytes, seed + i).
std::vector<BlockId> RegisterPatterned(CacheRig& rig, Tier* home, const std::string& prefix,
                                       int count, uint64_t bytes, uint64_t seed) {
  std::vector<BlockId> ids;
  for (int i = 0; i < count; ++i) {
    const auto d = Pattern(bytes, seed + i);
    ids.push_back(rig.cache->RegisterFromBuffer(prefix + std::to_string(i), d.data(), d.size(), home).value());
  }
  return ids;
}

// One pass of the engine over `ids`: acquire each block, check its bytes
// (Pattern(bytes, seed + i)), release it, then "compute" for a while so the
// cache's background threads run meanwhile.
::testing::AssertionResult ServeCycleChecked(CacheRig& rig, const std::vector<BlockId>& ids,
                                             uint64_t bytes, uint64_t seed) {
  for (size_t i = 0; i < ids.size(); ++i) {
    Result<void*> ptr = rig.cache->Acquire(ids[i], rig.stream);
    if (!ptr.ok()) return ::testing::AssertionFailure() << "block " << i << ": " << ptr.status().ToString();
    if (rig.ReadBack(*ptr, bytes) != Pattern(bytes, seed + i)) {
      return ::testing::AssertionFailure() << "block " << i << " read back wrong bytes";
    }
    Status released = rig.cache->Release(ids[i], rig.stream);
    if (!released.ok()) return ::testing::AssertionFailure() << released.ToString();
    std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
  return ::testing::AssertionSuccess();
}

TEST(BlockCacheTest, DramStagingTakesSlowHomeReadsOffTheLoadPath) {
  constexpr int kBlocks = 16;
  constexpr int kCached = 8;
  constexpr uint64_t kBytes = 64 * kKiB;
  RuntimeConfig config = StagingConfig(kCached * kBytes);
  config.demote_on_evict = false;
  CacheRig rig(config);
  FaultyTier* nvme = rig.Adopt(std::make_unique<FaultyTier>("nvme", 2 * kMiB));
  const std::vector<BlockId> ids = RegisterPatterned(rig, nvme, "n", kBlocks, kBytes, 300);
  CyclePredictor predictor(ids);
  rig.cache->SetPredictor(&predictor);
  const int nvme_slot = rig.cache->StatsSlotOf(nvme);
  const int dram_slot = rig.cache->StatsSlotOf(rig.dram.get());
  constexpr int kCycles = 6;
  constexpr int kWarmup = 2;
  TierTraffic nvme_before, dram_before, gpu_before;
  int reads_before = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    if (cycle == kWarmup) {
      ASSERT_TRUE(rig.cache->Drain().ok());
      nvme_before = rig.cache->stats().Snapshot(nvme_slot);
      dram_before = rig.cache->stats().Snapshot(dram_slot);
      gpu_before = rig.cache->stats().Snapshot(rig.cache->gpu_stats_slot());
      reads_before = nvme->reads_seen();
    }
    ASSERT_TRUE(ServeCycleChecked(rig, ids, kBytes, 300));
  }
  ASSERT_TRUE(rig.cache->Drain().ok());
  rig.cache->SetPredictor(nullptr);
  const TierTraffic nvme_after = rig.cache->stats().Snapshot(nvme_slot);
  const TierTraffic dram_after = rig.cache->stats().Snapshot(dram_slot);
  const TierTraffic gpu_after = rig.cache->stats().Snapshot(rig.cache->gpu_stats_slot());
  const uint64_t measured = kCycles - kWarmup;
  const uint64_t loads = (gpu_after.bytes_in - gpu_before.bytes_in) / kBytes;
  // Blocks still move through the GPU (it holds half the cycle)...
  EXPECT_GE(loads, measured * (kBlocks - kCached));
  // ...but from DRAM copies: loads served by the NVMe home are near zero
  // (one of slack for a staging read overtaken by its acquire), and so are
  // reads of it at all, staging included: one a cycle, for the block that
  // leaves the GPU's resident set for the first time since the first cycle
  // (staging starts once the cycle has been seen: the second).
  EXPECT_LE(nvme_after.hits - nvme_before.hits, 1u);
  // (+1 where a loaded machine delays a staging read past its acquire)
  EXPECT_LE(nvme->reads_seen() - reads_before, static_cast<int>(measured) + 2);
  EXPECT_GE(dram_after.hits - dram_before.hits, loads - 1);
  // Every NVMe block was staged once in the warm-up, and counted there.
  EXPECT_GE(nvme_before.bytes_out, (kBlocks - kCached) * kBytes);
  EXPECT_GE(dram_before.bytes_in, (kBlocks - kCached) * kBytes);
}

// A staging read that fails (an I/O error, or bytes that do not match the
// block's checksums) leaves no DRAM copy and no error for the engine; it is
// counted as an error of the home tier. The acquire then reads home itself:
// it succeeds once home reads do, and reports home's error cleanly while
// they keep failing.
TEST(BlockCacheTest, FailedDramStagingLeavesNoCopyAndAcquireReadsHome) {
  constexpr uint64_t kBytes = 64 * kKiB;
  RuntimeConfig config = SmallConfig();
  config.dram_prefetch_lookahead = 4;
  config.io_retries = 0;
  config.demote_on_evict = false;
  CacheRig rig(config);
  FaultyTier* nvme = rig.Adopt(std::make_unique<FaultyTier>("nvme", 1 * kMiB));
  const auto first = Pattern(kBytes, 500);
  std::vector<BlockId> ids = {rig.cache->RegisterFromBuffer("d0", first.data(), kBytes,
                                                            rig.dram.get()).value()};
  for (int i = 1; i <= 3; ++i) {
    const auto d = Pattern(kBytes, 500 + i);
    ids.push_back(
        rig.cache->RegisterFromBuffer("n" + std::to_string(i), d.data(), kBytes, nvme).value());
  }
  CyclePredictor predictor(ids, /*depth=*/0);  // only staging reads ahead
  rig.cache->SetPredictor(&predictor);
  const int nvme_slot = rig.cache->StatsSlotOf(nvme);
  // One pass so the cycle is known (staging asks no deeper than the last
  // access's reuse distance), then blocks 1-3 leave the GPU, with no copy.
  for (BlockId id : ids) {
    ASSERT_TRUE(rig.cache->Acquire(id, rig.stream).ok());
    ASSERT_TRUE(rig.cache->Release(id, rig.stream).ok());
  }
  ASSERT_TRUE(rig.cache->Drain().ok());
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(rig.cache->Evict(ids[i]).ok());
  ASSERT_EQ(rig.cache->stats().Snapshot(nvme_slot).errors, 0u);
  const uint64_t warm_bytes_out = rig.cache->stats().Snapshot(nvme_slot).bytes_out;
  const uint64_t warm_hits = rig.cache->stats().Snapshot(nvme_slot).hits;

  // Block 0's acquire predicts 1, 2, 3: their staging reads all fail (an
  // I/O error for two, a corrupted read for the third).
  nvme->FailNextReads(2);
  nvme->FailNextReads(1, FaultAction::kCorruptRead);
  ASSERT_TRUE(rig.cache->Acquire(ids[0], rig.stream).ok());
  ASSERT_TRUE(rig.cache->Drain().ok());
  EXPECT_EQ(nvme->faults_injected(), 3u);  // all three were acted out
  for (int i = 1; i <= 3; ++i) EXPECT_FALSE(rig.cache->Info(ids[i])->in_dram) << i;
  EXPECT_EQ(rig.cache->stats().Snapshot(nvme_slot).errors, 3u);
  EXPECT_EQ(rig.cache->stats().Snapshot(nvme_slot).bytes_out, warm_bytes_out);
  ASSERT_TRUE(rig.cache->Release(ids[0], rig.stream).ok());

  // Home keeps failing: the acquire returns its error, holding nothing.
  nvme->FailNextReads(-1);
  Result<void*> failed = rig.cache->Acquire(ids[1], rig.stream);
  EXPECT_EQ(failed.status().code(), ErrorCode::kIoError);
  EXPECT_EQ(rig.cache->Info(ids[1])->pins, 0u);
  EXPECT_FALSE(rig.cache->Info(ids[1])->on_gpu);

  // Home recovers: the acquire reads it, intact.
  nvme->Heal();
  Result<void*> ptr = rig.cache->Acquire(ids[1], rig.stream);
  ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
  EXPECT_EQ(rig.ReadBack(*ptr, kBytes), Pattern(kBytes, 501));
  ASSERT_TRUE(rig.cache->Release(ids[1], rig.stream).ok());
  // Home served both acquires of block 1 (the failed one counts too).
  EXPECT_EQ(rig.cache->stats().Snapshot(nvme_slot).hits, warm_hits + 2);

  // And staging works again: that acquire predicted 2 and 3, now copied,
  // and their acquires are served from DRAM, intact.
  ASSERT_TRUE(rig.cache->Drain().ok());
  EXPECT_TRUE(rig.cache->Info(ids[2])->in_dram);
  EXPECT_TRUE(rig.cache->Info(ids[3])->in_dram);
  const uint64_t dram_hits =
      rig.cache->stats().Snapshot(rig.cache->StatsSlotOf(rig.dram.get())).hits;
  for (int i = 2; i <= 3; ++i) {
    Result<void*> p = rig.cache->Acquire(ids[i], rig.stream);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(rig.ReadBack(*p, kBytes), Pattern(kBytes, 500 + i));
    ASSERT_TRUE(rig.cache->Release(ids[i], rig.stream).ok());
  }
  EXPECT_EQ(rig.cache->stats().Snapshot(rig.cache->StatsSlotOf(rig.dram.get())).hits,
            dram_hits + 2);
  rig.cache->SetPredictor(nullptr);
}

// DRAM room for only 4 of the 9 blocks rotating through the GPU, demotion
// on: staged copies and demoted ones compete for it. A copy may be evicted
// only for a block used sooner, and never while its own block is loading
// (the load makes GPU room first, and the demotion that frees it must not
// take the copy the load is about to read). So the copies that are made
// are used: about 4 loads a cycle come from DRAM.
TEST(BlockCacheTest, DramCopiesInShortRoomAreUsedBeforeTheyAreEvicted) {
  constexpr int kBlocks = 16;
  constexpr int kCached = 8;
  constexpr uint64_t kBytes = 64 * kKiB;
  RuntimeConfig config = StagingConfig(kCached * kBytes);
  // The staging ring, then room for 4 copies.
  config.dram_bytes = config.chunk_bytes * config.staging_buffers + 4 * kBytes;
  CacheRig rig(config);
  FaultyTier* nvme = rig.Adopt(std::make_unique<FaultyTier>("nvme", 2 * kMiB));
  const std::vector<BlockId> ids = RegisterPatterned(rig, nvme, "r", kBlocks, kBytes, 700);
  CyclePredictor predictor(ids);
  rig.cache->SetPredictor(&predictor);
  const int dram_slot = rig.cache->StatsSlotOf(rig.dram.get());
  constexpr int kCycles = 6;
  constexpr int kWarmup = 2;
  // Copies held at a point: made, not dropped (they may still be read).
  auto copies_held = [&] {
    uint64_t held = 0;
    for (BlockId id : ids) held += rig.cache->Info(id)->in_dram ? 1 : 0;
    return held;
  };
  const int nvme_slot = rig.cache->StatsSlotOf(nvme);
  TierTraffic dram_before, nvme_before;
  uint64_t held_before = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    if (cycle == kWarmup) {
      ASSERT_TRUE(rig.cache->Drain().ok());
      dram_before = rig.cache->stats().Snapshot(dram_slot);
      nvme_before = rig.cache->stats().Snapshot(nvme_slot);
      held_before = copies_held();
    }
    ASSERT_TRUE(ServeCycleChecked(rig, ids, kBytes, 700));
  }
  ASSERT_TRUE(rig.cache->Drain().ok());
  rig.cache->SetPredictor(nullptr);
  const TierTraffic dram_after = rig.cache->stats().Snapshot(dram_slot);
  // Loads the home served: each is a block whose staging read (if any) its
  // acquire overtook, so that read's copy comes too late for this use.
  const uint64_t home_loads = rig.cache->stats().Snapshot(nvme_slot).hits - nvme_before.hits;
  const uint64_t held_after = copies_held();
  const uint64_t measured = kCycles - kWarmup;
  const uint64_t dram_loads = dram_after.hits - dram_before.hits;
  const uint64_t copies_made = (dram_after.bytes_in - dram_before.bytes_in) / kBytes;
  EXPECT_GE(dram_loads, measured * 3);
  // Copies are made to be read: at most one a cycle dropped unread when
  // the machine keeps up, two where it does not (TSan's timing, two jobs on
  // two cores: staging and demotions land late, CI saw 38 and 39 made for
  // 33 read). A copy still held when the run ends (staged ahead for the
  // next cycle) is not dropped, so it is not counted; nor is one per load
  // the home served (a staging read its block's acquire overtook).
  const uint64_t dropped = copies_made + held_before - std::min(held_after, copies_made + held_before);
  EXPECT_LE(dropped, dram_loads + 2 * measured + home_loads)
      << "made " << copies_made << ", held " << held_before << " -> " << held_after << ", home loads "
      << home_loads;
}

}  // namespace
}  // namespace tiercache
