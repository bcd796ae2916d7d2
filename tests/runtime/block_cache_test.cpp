#include "runtime/block_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "prefetch/access_predictor.h"
#include "runtime/json.h"
#include "tests/runtime/runtime_test_util.h"
#include "tiers/nvme_tier.h"
#include "tiers/pmem_tier.h"

namespace tiercache {
namespace {

using testing::CacheRig;
using testing::CyclePredictor;
using testing::FaultyTier;
using testing::Pattern;
using testing::SmallConfig;

std::unique_ptr<NvmeTier> MakeNvme(const std::string& file, uint64_t capacity) {
  NvmeTierOptions options;
  options.path = ::testing::TempDir() + "/" + file;
  options.capacity = capacity;
  options.direct = false;  // test directories are often tmpfs
  auto tier = NvmeTier::Create(options);
  EXPECT_TRUE(tier.ok()) << tier.status().ToString();
  return tier.ok() ? std::move(tier).value() : nullptr;
}

TEST(BlockCacheTest, DramHomedBlockRoundTripsThroughTheGpu) {
  CacheRig rig;
  const auto data = Pattern(300 * kKiB + 17, 1);  // several chunks, ragged end
  auto id = rig.cache->RegisterFromBuffer("w0", data.data(), data.size(), rig.dram.get());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto ptr = rig.cache->Acquire(*id, rig.stream);
  ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
  EXPECT_TRUE(rig.emulated->IsDeviceRange(*ptr, data.size()));
  EXPECT_EQ(rig.ReadBack(*ptr, data.size()), data);
  // A pinned DRAM home is copied straight from: every upload was pinned.
  EXPECT_GT(rig.emulated->stats().pinned_host_copies, 0u);
  ASSERT_TRUE(rig.cache->Release(*id, rig.stream).ok());

  // The second acquire is a hit at the same address.
  auto again = rig.cache->Acquire(*id, rig.stream);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *ptr);
  ASSERT_TRUE(rig.cache->Release(*id, rig.stream).ok());
  ASSERT_TRUE(rig.cache->Drain().ok());  // byte counts are credited as copies complete
  const TierTraffic gpu = rig.cache->stats().Snapshot(rig.cache->gpu_stats_slot());
  EXPECT_EQ(gpu.hits, 1u);
  EXPECT_EQ(gpu.misses, 1u);
  EXPECT_EQ(gpu.bytes_in, data.size());
}

TEST(BlockCacheTest, NvmeHomedBlockGoesThroughStagingAndIsVerified) {
  CacheRig rig;
  NvmeTier* nvme = rig.Adopt(MakeNvme("cache_nvme_roundtrip", 16 * kMiB));
  ASSERT_NE(nvme, nullptr);
  const auto data = Pattern(1 * kMiB + 4096 + 3, 2);  // > staging ring: slots are reused
  auto id = rig.cache->RegisterFromBuffer("n0", data.data(), data.size(), nvme);
  ASSERT_TRUE(id.ok());
  const uint64_t pageable_before = rig.emulated->stats().pageable_host_copies;
  auto ptr = rig.cache->Acquire(*id, rig.stream);
  ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
  EXPECT_EQ(rig.ReadBack(*ptr, data.size()), data);
  EXPECT_EQ(rig.emulated->stats().pageable_host_copies, pageable_before + 1)
      << "only the test's own read-back may be pageable: staging must be pinned";
  ASSERT_TRUE(rig.cache->Release(*id, rig.stream).ok());
  ASSERT_TRUE(rig.cache->Drain().ok());
  const TierTraffic t = rig.cache->stats().Snapshot(rig.cache->StatsSlotOf(nvme));
  EXPECT_EQ(t.bytes_out, data.size());
  EXPECT_EQ(t.hits, 1u);
  EXPECT_GT(t.busy_ns, 0u);
}

TEST(BlockCacheTest, PmemHomedBlockFoundAgainByKey) {
  const std::string path = ::testing::TempDir() + "/cache_pmem_key.pool";
  std::remove(path.c_str());
  const auto data = Pattern(200 * kKiB, 3);
  {
    PmemTierOptions options;
    options.path = path;
    options.capacity = 8 * kMiB;
    auto pmem = PmemTier::Open(options);
    ASSERT_TRUE(pmem.ok()) << pmem.status().ToString();
    auto extent = (*pmem)->Allocate(data.size());
    ASSERT_TRUE(extent.ok());
    ASSERT_TRUE((*pmem)->Write(*extent, 0, data.data(), data.size()).ok());
    ASSERT_TRUE((*pmem)->Commit(42, *extent).ok());
  }
  PmemTierOptions options;
  options.path = path;
  auto reopened = PmemTier::Open(options);  // a restart
  ASSERT_TRUE(reopened.ok());
  CacheRig rig;
  PmemTier* pmem = rig.Adopt(std::move(reopened).value());
  // A caller that knows the block's size refuses an entry of another.
  EXPECT_EQ(rig.cache->RegisterFromKey("p0", pmem, 42, kNoGroup, data.size() + 1).status().code(),
            ErrorCode::kCorruption);
  EXPECT_FALSE(rig.cache->FindBlock("p0").ok()) << "nothing registered";
  auto id = rig.cache->RegisterFromKey("p0", pmem, 42, kNoGroup, data.size());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto ptr = rig.cache->Acquire(*id, rig.stream);
  ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
  EXPECT_EQ(rig.ReadBack(*ptr, data.size()), data);
  ASSERT_TRUE(rig.cache->Release(*id, rig.stream).ok());
  EXPECT_EQ(rig.cache->RegisterFromKey("p1", pmem, 43).status().code(), ErrorCode::kNotFound);
  std::remove(path.c_str());
}

TEST(BlockCacheTest, FileRangeRegistration) {
  CacheRig rig;
  const auto data = Pattern(150 * kKiB, 4);
  const std::string path = ::testing::TempDir() + "/cache_file_range.bin";
  {
    std::ofstream out(path, std::ios::binary);
    out.write("HEADER--", 8);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  }
  auto id = rig.cache->RegisterFromFile("f0", path, 8, data.size(), rig.dram.get());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto ptr = rig.cache->Acquire(*id, rig.stream);
  ASSERT_TRUE(ptr.ok());
  EXPECT_EQ(rig.ReadBack(*ptr, data.size()), data);
  ASSERT_TRUE(rig.cache->Release(*id, rig.stream).ok());
  EXPECT_EQ(rig.cache->RegisterFromFile("f1", path, 8, data.size() + 1, rig.dram.get())
                .status().code(), ErrorCode::kInvalidArgument);  // past the end
  EXPECT_EQ(rig.cache->RegisterFromFile("f2", "/nonexistent/x", 0, 10, rig.dram.get())
                .status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(rig.cache->FindBlock("f0").value(), *id);
  std::remove(path.c_str());
}

// A cache holding two blocks cycles through four NVMe-homed blocks: every
// eviction demotes to DRAM and every refetch comes back intact from there.
TEST(BlockCacheTest, EvictionDemotesAndRefetchesIntact) {
  RuntimeConfig config = SmallConfig();
  config.gpu_cache_bytes = 2 * 256 * kKiB;
  config.gpu_policy = "lru";  // every acquire misses: each refetch is tested
  config.prefetch = "off";
  CacheRig rig(config);
  NvmeTier* nvme = rig.Adopt(MakeNvme("cache_nvme_evict", 16 * kMiB));
  ASSERT_NE(nvme, nullptr);
  std::vector<std::vector<unsigned char>> data;
  std::vector<BlockId> ids;
  for (int i = 0; i < 4; ++i) {
    data.push_back(Pattern(256 * kKiB, 10 + i));
    ids.push_back(rig.cache->RegisterFromBuffer("b" + std::to_string(i), data[i].data(),
                                                data[i].size(), nvme).value());
  }
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      auto ptr = rig.cache->Acquire(ids[i], rig.stream);
      ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
      ASSERT_EQ(rig.ReadBack(*ptr, data[i].size()), data[i]) << "round " << round << " block " << i;
      ASSERT_TRUE(rig.cache->Release(ids[i], rig.stream).ok());
      EXPECT_LE(rig.cache->gpu_cached_bytes(), config.gpu_cache_bytes);
    }
  }
  ASSERT_TRUE(rig.cache->Drain().ok());
  const TierTraffic gpu = rig.cache->stats().Snapshot(rig.cache->gpu_stats_slot());
  EXPECT_EQ(gpu.misses, 12u);  // LRU on a cyclic scan larger than the cache
  EXPECT_GE(gpu.evictions, 10u);
  const TierTraffic dram = rig.cache->stats().Snapshot(rig.cache->StatsSlotOf(rig.dram.get()));
  EXPECT_GT(dram.bytes_in, 0u);   // demotions
  EXPECT_GT(dram.hits, 0u);       // refetches served from the DRAM copies
  const TierTraffic n = rig.cache->stats().Snapshot(rig.cache->StatsSlotOf(nvme));
  EXPECT_EQ(n.bytes_out, 4 * 256 * kKiB) << "after the first round NVMe is not read again";
}

// A cyclic scan over twice the cache: LRU misses every time, while next-use
// eviction fed by the engine's hints keeps half the blocks (only the
// minimum, 16 - 8 blocks per cycle, is moved), with or without prefetch.
TEST(BlockCacheTest, CyclicScanDoesNotThrashWithNextUseHints) {
  for (const char* policy : {"lru", "next-use"}) {
    for (bool prefetch : {false, true}) {
      RuntimeConfig config = SmallConfig();
      config.gpu_cache_bytes = 8 * 64 * kKiB;
      config.gpu_policy = policy;
      config.prefetch = "hints";  // the engine's hints alone, no learning
      CacheRig rig(config);
      std::vector<BlockId> ids;
      for (int i = 0; i < 16; ++i) {
        const auto d = Pattern(64 * kKiB, i);
        ids.push_back(rig.cache->RegisterFromBuffer("c" + std::to_string(i), d.data(), d.size(),
                                                    rig.dram.get()).value());
      }
      TierTraffic before;
      for (int cycle = 0; cycle < 4; ++cycle) {
        if (cycle == 2) before = rig.cache->stats().Snapshot(rig.cache->gpu_stats_slot());
        for (int i = 0; i < 16; ++i) {
          if (prefetch) {
            ASSERT_TRUE(rig.cache->Prefetch({ids[(i + 1) % 16]}).ok());
          }
          ASSERT_TRUE(rig.cache->Acquire(ids[i], rig.stream).ok());
          ASSERT_TRUE(rig.cache->HintNextUse(ids[i], 16).ok());
          ASSERT_TRUE(rig.cache->Release(ids[i], rig.stream).ok());
        }
        ASSERT_TRUE(rig.cache->Drain().ok());
      }
      const TierTraffic after = rig.cache->stats().Snapshot(rig.cache->gpu_stats_slot());
      const uint64_t loads = (after.bytes_in - before.bytes_in) / (64 * kKiB);
      if (std::string(policy) == "lru") {
        EXPECT_EQ(loads, 32u) << "LRU reloads every block of a scan larger than the cache";
      } else {
        // 8 per cycle is MIN (so at least 16); the block acquired last is
        // spared while its work may be pending (the double buffer), which
        // depends on whether its fence has run yet: up to two more a cycle,
        // and a prefetch racing the acquire it anticipates may cost one
        // more. Far from LRU's 32 either way.
        EXPECT_GE(loads, 16u);
        EXPECT_LE(loads, 22u);
      }
    }
  }
}

TEST(BlockCacheTest, StreamWaitsForTheUploadNotTheHost) {
  // Each emulated copy sleeps 25 ms: a reader that did not wait for the
  // upload's event would see zeros.
  CacheRig rig(SmallConfig(), 64 * kMiB, std::chrono::microseconds(25000));
  const auto data = Pattern(256 * kKiB, 5);
  auto id = rig.cache->RegisterFromBuffer("s0", data.data(), data.size(), rig.dram.get()).value();
  auto ptr = rig.cache->Acquire(id, rig.stream);
  ASSERT_TRUE(ptr.ok());
  // Four 64 KiB chunks at 25 ms each: the acquire returned before they ran
  // (a wall-clock bound here would fail on a loaded machine; the upload's
  // state says the same without one).
  EXPECT_FALSE(rig.cache->Info(id)->gpu_ready);
  EXPECT_EQ(rig.ReadBack(*ptr, data.size()), data);
  ASSERT_TRUE(rig.cache->Release(id, rig.stream).ok());
  ASSERT_TRUE(rig.cache->Drain().ok());
  EXPECT_TRUE(rig.cache->Info(id)->gpu_ready);
  EXPECT_GT(rig.cache->stats().Snapshot(rig.cache->gpu_stats_slot()).stall_ns, 0u);
}

TEST(BlockCacheTest, PinsHoldUntilTheStreamHasRun) {
  RuntimeConfig config = SmallConfig();
  config.gpu_cache_bytes = 256 * kKiB;  // one block
  config.acquire_wait_ms = 50;
  CacheRig rig(config);
  const auto a = Pattern(256 * kKiB, 6), b = Pattern(256 * kKiB, 7);
  auto ida = rig.cache->RegisterFromBuffer("a", a.data(), a.size(), rig.dram.get()).value();
  auto idb = rig.cache->RegisterFromBuffer("b", b.data(), b.size(), rig.dram.get()).value();
  auto pa = rig.cache->Acquire(ida, rig.stream);
  ASSERT_TRUE(pa.ok());
  // `a` is held: `b` cannot get room.
  EXPECT_EQ(rig.cache->Acquire(idb, rig.stream).status().code(), ErrorCode::kOutOfSpace);
  EXPECT_EQ(rig.cache->Evict(ida).code(), ErrorCode::kBusy);

  // Released behind slow work on the stream: still pinned until it runs.
  std::atomic<bool> gate{false};
  ASSERT_TRUE(rig.device->LaunchHostFunc(rig.stream, [](void* g) {
    while (!static_cast<std::atomic<bool>*>(g)->load()) std::this_thread::yield();
  }, &gate).ok());
  ASSERT_TRUE(rig.cache->Release(ida, rig.stream).ok());
  EXPECT_EQ(rig.cache->Evict(ida).code(), ErrorCode::kBusy);
  EXPECT_EQ(rig.cache->Info(ida)->pins, 1u);
  gate = true;
  ASSERT_TRUE(rig.device->StreamSynchronize(rig.stream).ok());
  auto pb = rig.cache->Acquire(idb, rig.stream);  // now `a` gives way
  ASSERT_TRUE(pb.ok()) << pb.status().ToString();
  EXPECT_EQ(rig.ReadBack(*pb, b.size()), b);
  EXPECT_FALSE(rig.cache->Info(ida)->on_gpu);
  ASSERT_TRUE(rig.cache->Release(idb, rig.stream).ok());
}

// A block released behind unfinished work may still be chosen as a victim:
// its memory is freed in that stream's order, so the work still reads the
// block's own bytes even though another block has been loaded meanwhile.
TEST(BlockCacheTest, VictimReleasedBehindRunningWorkIsFreedInStreamOrder) {
  RuntimeConfig config = SmallConfig();
  config.gpu_cache_bytes = 256 * kKiB;  // one block
  CacheRig rig(config);
  const auto a = Pattern(256 * kKiB, 16), b = Pattern(256 * kKiB, 17);
  auto ida = rig.cache->RegisterFromBuffer("a", a.data(), a.size(), rig.dram.get()).value();
  auto idb = rig.cache->RegisterFromBuffer("b", b.data(), b.size(), rig.dram.get()).value();
  auto pa = rig.cache->Acquire(ida, rig.stream);
  ASSERT_TRUE(pa.ok());
  std::atomic<bool> gate{false};
  ASSERT_TRUE(rig.device->LaunchHostFunc(rig.stream, [](void* g) {
    while (!static_cast<std::atomic<bool>*>(g)->load()) std::this_thread::yield();
  }, &gate).ok());
  std::vector<unsigned char> late(a.size());  // read after the gate opens
  ASSERT_TRUE(rig.device->CopyAsync(late.data(), *pa, a.size(), CopyKind::kDeviceToHost,
                                    rig.stream).ok());
  ASSERT_TRUE(rig.cache->Release(ida, rig.stream).ok());

  Stream other = rig.device->CreateStream().value();
  auto pb = rig.cache->Acquire(idb, other);  // evicts `a` without waiting for the gate
  ASSERT_TRUE(pb.ok()) << pb.status().ToString();
  EXPECT_FALSE(rig.cache->Info(ida)->on_gpu);
  EXPECT_EQ(rig.ReadBack(*pb, b.size(), other), b);
  ASSERT_TRUE(rig.cache->Release(idb, other).ok());
  gate = true;
  ASSERT_TRUE(rig.device->StreamSynchronize(rig.stream).ok());
  EXPECT_EQ(late, a) << "the evicted block's memory was reused before its reader ran";
  ASSERT_TRUE(rig.cache->Drain().ok());
  ASSERT_TRUE(rig.device->DestroyStream(other).ok());
}

TEST(BlockCacheTest, MisuseGetsClearErrors) {
  CacheRig rig;
  const auto data = Pattern(4096, 8);
  auto id = rig.cache->RegisterFromBuffer("m", data.data(), data.size(), rig.dram.get()).value();
  EXPECT_EQ(rig.cache->Release(id, rig.stream).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(rig.cache->Acquire(999, rig.stream).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(rig.cache->RegisterFromBuffer("m", data.data(), data.size(), rig.dram.get())
                .status().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(rig.cache->RegisterFromBuffer("x", nullptr, 10, rig.dram.get()).status().code(),
            ErrorCode::kInvalidArgument);
  FaultyTier unattached("unattached", kMiB);
  EXPECT_EQ(rig.cache->RegisterFromBuffer("y", data.data(), data.size(), &unattached)
                .status().code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(rig.cache->Acquire(id, rig.stream).ok());
  EXPECT_EQ(rig.cache->Unregister(id).code(), ErrorCode::kBusy);
  ASSERT_TRUE(rig.cache->Release(id, rig.stream).ok());
  ASSERT_TRUE(rig.device->StreamSynchronize(rig.stream).ok());
  EXPECT_TRUE(rig.cache->Unregister(id).ok());
  EXPECT_EQ(rig.cache->Acquire(id, rig.stream).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(rig.cache->FindBlock("m").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(rig.cache->gpu_cached_bytes(), 0u);
}

TEST(BlockCacheTest, TryAcquireNeverWaitsAndStartsAPrefetch) {
  CacheRig rig;
  const auto data = Pattern(128 * kKiB, 9);
  auto id = rig.cache->RegisterFromBuffer("t", data.data(), data.size(), rig.dram.get()).value();
  EXPECT_EQ(rig.cache->TryAcquire(id, rig.stream).status().code(), ErrorCode::kBusy);
  ASSERT_TRUE(rig.cache->Drain().ok());
  auto ptr = rig.cache->TryAcquire(id, rig.stream);
  ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
  EXPECT_EQ(rig.ReadBack(*ptr, data.size()), data);
  ASSERT_TRUE(rig.cache->Release(id, rig.stream).ok());
}

TEST(BlockCacheTest, GroupsAcquireTogether) {
  CacheRig rig;
  auto group = rig.cache->CreateGroup("layer0").value();
  std::vector<std::vector<unsigned char>> data;
  for (int i = 0; i < 3; ++i) {
    data.push_back(Pattern(64 * kKiB + i, 20 + i));
    ASSERT_TRUE(rig.cache->RegisterFromBuffer("g" + std::to_string(i), data[i].data(),
                                              data[i].size(), rig.dram.get(), group).ok());
  }
  auto pointers = rig.cache->AcquireGroup(group, rig.stream);
  ASSERT_TRUE(pointers.ok());
  ASSERT_EQ(pointers->size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rig.ReadBack((*pointers)[i], data[i].size()), data[i]);
  ASSERT_TRUE(rig.cache->ReleaseGroup(group, rig.stream).ok());
  EXPECT_EQ(rig.cache->AcquireGroup(77, rig.stream).status().code(), ErrorCode::kNotFound);
}

TEST(BlockCacheTest, PrefetchMakesTheNextAcquireAHit) {
  CacheRig rig;
  std::vector<BlockId> ids;
  for (int i = 0; i < 4; ++i) {
    const auto data = Pattern(64 * kKiB, 30 + i);
    ids.push_back(rig.cache->RegisterFromBuffer("p" + std::to_string(i), data.data(), data.size(),
                                                rig.dram.get()).value());
  }
  ASSERT_TRUE(rig.cache->Prefetch(ids).ok());
  ASSERT_TRUE(rig.cache->Drain().ok());
  for (BlockId id : ids) {
    ASSERT_TRUE(rig.cache->Acquire(id, rig.stream).ok());
    ASSERT_TRUE(rig.cache->Release(id, rig.stream).ok());
  }
  const TierTraffic gpu = rig.cache->stats().Snapshot(rig.cache->gpu_stats_slot());
  EXPECT_EQ(gpu.hits, 4u);
  EXPECT_EQ(gpu.misses, 0u);
  EXPECT_EQ(rig.cache->Prefetch({12345}).code(), ErrorCode::kNotFound);
}

TEST(BlockCacheTest, StatsExportIsJson) {
  CacheRig rig;
  const auto data = Pattern(4096, 40);
  auto id = rig.cache->RegisterFromBuffer("j", data.data(), data.size(), rig.dram.get()).value();
  ASSERT_TRUE(rig.cache->Acquire(id, rig.stream).ok());
  ASSERT_TRUE(rig.cache->Release(id, rig.stream).ok());
  auto json = ParseJson(rig.cache->StatsJson());
  ASSERT_TRUE(json.ok()) << rig.cache->StatsJson();
  const JsonValue* tiers = json->Find("tiers");
  ASSERT_NE(tiers, nullptr);
  ASSERT_GE(tiers->items().size(), 2u);
  EXPECT_EQ(tiers->items()[0].Find("name")->AsString().value(), "gpu");
  EXPECT_EQ(tiers->items()[0].Find("misses")->AsUint64().value(), 1u);
  EXPECT_EQ(json->Find("blocks")->Find("registered")->AsUint64().value(), 1u);
  EXPECT_NE(json->Find("allocator"), nullptr);
  EXPECT_NE(json->Find("fallbacks"), nullptr);
}

// A cyclic scan over twice the cache with predictor-driven prefetch: a
// prefetch may only evict a block needed later than the one it brings
// (and later than the blocks touched before it), so the blocks moved per
// cycle stay at the demand minimum (16 - 8) whatever the lookahead. Before,
// a prefetched block ranked "unknown" until used, so the next prefetch
// evicted it, and deeper lookahead moved more bytes.
TEST(BlockCacheTest, PrefetchNeverEvictsNearerBlocksOnACyclicScan) {
  constexpr int kBlocks = 16;
  constexpr int kCached = 8;
  constexpr uint64_t kBytes = 64 * kKiB;
  for (int64_t lookahead : {2, 16}) {
    SCOPED_TRACE("lookahead " + std::to_string(lookahead));
    RuntimeConfig config = SmallConfig();
    config.gpu_cache_bytes = kCached * kBytes;
    config.gpu_policy = "next-use";
    config.prefetch_lookahead = lookahead;
    CacheRig rig(config);
    std::vector<BlockId> ids;
    for (int i = 0; i < kBlocks; ++i) {
      const auto d = Pattern(kBytes, 60 + i);
      ids.push_back(rig.cache->RegisterFromBuffer("s" + std::to_string(i), d.data(), d.size(),
                                                  rig.dram.get()).value());
    }
    CyclePredictor predictor(ids);
    rig.cache->SetPredictor(&predictor);
    TierTraffic before;
    constexpr int kCycles = 6;
    for (int cycle = 0; cycle < kCycles; ++cycle) {
      if (cycle == 2) {
        // Transfers are counted when their completion runs, which may lag:
        // settle them so the earlier cycles' loads stay out of the count.
        ASSERT_TRUE(rig.cache->Drain().ok());
        before = rig.cache->stats().Snapshot(rig.cache->gpu_stats_slot());
      }
      for (int i = 0; i < kBlocks; ++i) {
        ASSERT_TRUE(rig.cache->Acquire(ids[i], rig.stream).ok());
        ASSERT_TRUE(rig.device->StreamSynchronize(rig.stream).ok());
        ASSERT_TRUE(rig.cache->Release(ids[i], rig.stream).ok());
      }
    }
    ASSERT_TRUE(rig.cache->Drain().ok());
    rig.cache->SetPredictor(nullptr);
    const TierTraffic after = rig.cache->stats().Snapshot(rig.cache->gpu_stats_slot());
    const uint64_t loads = (after.bytes_in - before.bytes_in) / kBytes;
    const uint64_t measured = kCycles - 2;
    // Demand MIN moves 16 - 8 + 1 blocks a cycle at most; the streaming
    // ring (two blocks: the one in use and the next one's copy) one more;
    // one more block in flight at the end is the slack.
    EXPECT_LE(loads, measured * (kBlocks - kCached + 2) + 1);
    // And prefetch still does its job: many acquires find their block (on
    // an idle machine most do; a loaded one delays the prefetch thread).
    EXPECT_GE(after.hits - before.hits, measured * kBlocks * 3 / 8);
  }
}

}  // namespace
}  // namespace tiercache
