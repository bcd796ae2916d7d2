// Fault injection, concurrency and memory pressure for the block cache.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>

#include "runtime/block_cache.h"
#include "tests/runtime/runtime_test_util.h"
#include "tiers/pmem_tier.h"

namespace tiercache {
namespace {

using testing::CacheRig;
using testing::FaultyTier;
using testing::Pattern;
using testing::SmallConfig;

struct FaultRig {
  CacheRig rig;
  FaultyTier* nvme;
  std::vector<std::vector<unsigned char>> data;
  std::vector<BlockId> ids;

  explicit FaultRig(RuntimeConfig config = SmallConfig()) : rig(config) {
    nvme = rig.Adopt(std::make_unique<FaultyTier>("faulty-nvme", 8 * kMiB));
    for (int i = 0; i < 3; ++i) {
      data.push_back(Pattern(200 * kKiB + 5, 100 + i));
      ids.push_back(rig.cache->RegisterFromBuffer("f" + std::to_string(i), data[i].data(),
                                                  data[i].size(), nvme).value());
    }
  }
  // Acquires block i, checks every byte, releases.
  Status Check(int i) {
    auto ptr = rig.cache->Acquire(ids[i], rig.stream);
    if (!ptr.ok()) return ptr.status();
    EXPECT_EQ(rig.ReadBack(*ptr, data[i].size()), data[i]) << "block " << i;
    return rig.cache->Release(ids[i], rig.stream);
  }
};

TEST(CacheFaultTest, TransientReadErrorIsRetried) {
  FaultRig f;
  f.nvme->FailNextReads(1);
  EXPECT_TRUE(f.Check(0).ok());
  EXPECT_EQ(f.nvme->faults_injected(), 1u);
}

TEST(CacheFaultTest, PersistentReadErrorFailsOnlyThatAcquire) {
  FaultRig f;
  ASSERT_TRUE(f.Check(1).ok());  // resident before the fault
  f.nvme->FailNextReads(-1);
  auto ptr = f.rig.cache->Acquire(f.ids[0], f.rig.stream);
  EXPECT_EQ(ptr.status().code(), ErrorCode::kIoError);
  EXPECT_FALSE(f.rig.cache->Info(f.ids[0])->on_gpu);
  EXPECT_EQ(f.rig.cache->Info(f.ids[0])->pins, 0u);
  EXPECT_TRUE(f.Check(1).ok());  // another block is untouched
  f.nvme->Heal();
  EXPECT_TRUE(f.Check(0).ok());  // nothing was lost: home still has it
  EXPECT_TRUE(f.Check(2).ok());
  ASSERT_TRUE(f.rig.cache->Drain().ok());
  EXPECT_GT(f.rig.cache->stats().Snapshot(f.rig.cache->StatsSlotOf(f.nvme)).errors, 0u);
}

TEST(CacheFaultTest, ShortReadIsCaughtByChecksumAndRetried) {
  FaultRig f;
  f.nvme->FailNextReads(1, FaultAction::kShortRead);
  EXPECT_TRUE(f.Check(0).ok());
  f.nvme->FailNextReads(-1, FaultAction::kShortRead);
  EXPECT_EQ(f.rig.cache->Acquire(f.ids[1], f.rig.stream).status().code(),
            ErrorCode::kCorruption);
  f.nvme->Heal();
  EXPECT_TRUE(f.Check(1).ok());
}

TEST(CacheFaultTest, CorruptedReadIsNeverHandedToTheGpu) {
  FaultRig f;
  f.nvme->FailNextReads(-1, FaultAction::kCorruptRead);
  EXPECT_EQ(f.rig.cache->Acquire(f.ids[2], f.rig.stream).status().code(),
            ErrorCode::kCorruption);
  f.nvme->Heal();
  EXPECT_TRUE(f.Check(2).ok());
}

TEST(CacheFaultTest, CorruptedPmemBlockIsReportedOthersUnaffected) {
  const std::string path = ::testing::TempDir() + "/cache_pmem_corrupt.pool";
  std::remove(path.c_str());
  PmemTierOptions options;
  options.path = path;
  options.capacity = 8 * kMiB;
  CacheRig rig;
  PmemTier* pmem = rig.Adopt(PmemTier::Open(options).value());
  const auto a = Pattern(150 * kKiB, 7), b = Pattern(150 * kKiB, 8);
  Extent ea = pmem->Allocate(a.size()).value();
  ASSERT_TRUE(pmem->Write(ea, 0, a.data(), a.size()).ok());
  auto ida = rig.cache->RegisterFromTier("pa", pmem, ea).value();  // checksummed now
  auto idb = rig.cache->RegisterFromBuffer("pb", b.data(), b.size(), pmem).value();
  // Flip a byte of `a` on the medium behind the cache's back.
  const unsigned char flipped = a[1234] ^ 0xFF;
  ASSERT_TRUE(pmem->Write(ea, 1234, &flipped, 1).ok());

  EXPECT_EQ(rig.cache->Acquire(ida, rig.stream).status().code(), ErrorCode::kCorruption);
  auto pb = rig.cache->Acquire(idb, rig.stream);
  ASSERT_TRUE(pb.ok());
  EXPECT_EQ(rig.ReadBack(*pb, b.size()), b);
  ASSERT_TRUE(rig.cache->Release(idb, rig.stream).ok());
  // Repaired on the medium, `a` loads again: the failure left no residue.
  ASSERT_TRUE(pmem->Write(ea, 1234, &a[1234], 1).ok());
  auto pa = rig.cache->Acquire(ida, rig.stream);
  ASSERT_TRUE(pa.ok());
  EXPECT_EQ(rig.ReadBack(*pa, a.size()), a);
  ASSERT_TRUE(rig.cache->Release(ida, rig.stream).ok());
  std::remove(path.c_str());
}

TEST(CacheFaultTest, FailedDeviceAllocationIsAnErrorNotACrash) {
  FaultRig f;
  // Block 0 stays acquired (pinned) through the failure.
  auto held = f.rig.cache->Acquire(f.ids[0], f.rig.stream);
  ASSERT_TRUE(held.ok());
  // A 3 MiB block needs a new segment from the device, which now refuses.
  const auto big = Pattern(3 * kMiB, 9);
  auto id = f.rig.cache->RegisterFromBuffer("big", big.data(), big.size(), f.nvme).value();
  FaultRule refuse;
  refuse.site = FaultSite::kDeviceAllocate;
  refuse.action = FaultAction::kOutOfMemory;
  refuse.count = -1;
  f.rig.device_faults->Add(refuse);
  EXPECT_EQ(f.rig.cache->Acquire(id, f.rig.stream).status().code(), ErrorCode::kOutOfMemory);
  EXPECT_FALSE(f.rig.cache->Info(id)->on_gpu);
  EXPECT_EQ(f.rig.ReadBack(*held, f.data[0].size()), f.data[0]);  // untouched
  ASSERT_TRUE(f.rig.cache->Release(f.ids[0], f.rig.stream).ok());
  f.rig.device_faults->Clear();
  auto ptr = f.rig.cache->Acquire(id, f.rig.stream);
  ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
  EXPECT_EQ(f.rig.ReadBack(*ptr, big.size()), big);
  ASSERT_TRUE(f.rig.cache->Release(id, f.rig.stream).ok());
  EXPECT_TRUE(f.Check(0).ok());
}

// The engine allocating from the shared budget makes cached blocks give way
// instead of failing.
TEST(CacheFaultTest, AllocatorPressureEvictsCachedBlocks) {
  RuntimeConfig config = SmallConfig();
  CacheRig rig(config, /*budget=*/8 * kMiB);
  std::vector<BlockId> ids;
  std::vector<std::vector<unsigned char>> data;
  for (int i = 0; i < 6; ++i) {
    data.push_back(Pattern(1 * kMiB, 200 + i));
    ids.push_back(rig.cache->RegisterFromBuffer("p" + std::to_string(i), data[i].data(),
                                                data[i].size(), rig.dram.get()).value());
    ASSERT_TRUE(rig.cache->Acquire(ids[i], rig.stream).ok());
    ASSERT_TRUE(rig.cache->Release(ids[i], rig.stream).ok());
  }
  ASSERT_TRUE(rig.device->StreamSynchronize(rig.stream).ok());
  ASSERT_TRUE(rig.cache->Drain().ok());
  EXPECT_EQ(rig.cache->gpu_cached_bytes(), 6 * kMiB);
  // 6 MiB cached in an 8 MiB budget: a 5 MiB activation needs room.
  auto activation = rig.allocator->Allocate(5 * kMiB, rig.stream);
  ASSERT_TRUE(activation.ok()) << activation.status().ToString();
  EXPECT_LE(rig.cache->gpu_cached_bytes(), 3 * kMiB);
  EXPECT_GT(rig.allocator->GetStats().pressure_calls, 0u);
  ASSERT_TRUE(rig.allocator->Free(*activation, rig.stream).ok());
  for (int i = 0; i < 6; ++i) {  // every block still comes back intact
    auto ptr = rig.cache->Acquire(ids[i], rig.stream);
    ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
    EXPECT_EQ(rig.ReadBack(*ptr, data[i].size()), data[i]);
    ASSERT_TRUE(rig.cache->Release(ids[i], rig.stream).ok());
  }
}

// Threads acquire overlapping sets, each on its own stream, in a cache that
// holds half of what the threads hold at once. An acquire that finds the
// cache full of other threads' blocks fails at once with kOutOfSpace (the
// documented contract); the thread then lets go of what it holds and tries
// again, as an engine would. Every iteration must get through and every
// read-back must match; no other error may appear.
TEST(CacheFaultTest, ManyThreadsOverlappingSets) {
  RuntimeConfig config = SmallConfig();
  config.gpu_cache_bytes = 4 * 128 * kKiB;
  config.acquire_wait_ms = 100;
  CacheRig rig(config);
  FaultyTier* nvme = rig.Adopt(std::make_unique<FaultyTier>("nvme", 8 * kMiB));
  constexpr int kBlocks = 12;
  std::vector<std::vector<unsigned char>> data;
  std::vector<BlockId> ids;
  for (int i = 0; i < kBlocks; ++i) {
    data.push_back(Pattern(128 * kKiB, 300 + i));
    Tier* home = i % 2 ? static_cast<Tier*>(nvme) : rig.dram.get();
    ids.push_back(rig.cache->RegisterFromBuffer("t" + std::to_string(i), data[i].data(),
                                                data[i].size(), home).value());
  }
  constexpr int kThreads = 4;
  constexpr int kIterations = 40;
  std::atomic<int> mismatches{0}, successes{0}, out_of_space{0}, other_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Stream stream = rig.device->CreateStream().value();
      std::mt19937 rng(t);
      std::vector<unsigned char> host(128 * kKiB);
      auto note = [&](const Status& s) {
        (s.code() == ErrorCode::kOutOfSpace ? out_of_space : other_errors)++;
      };
      for (int iteration = 0; iteration < kIterations; ++iteration) {
        const int first = static_cast<int>(rng() % kBlocks);
        const int second = (first + 1 + static_cast<int>(rng() % 3)) % kBlocks;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        for (int attempt = 0; std::chrono::steady_clock::now() < deadline; ++attempt) {
          auto a = rig.cache->Acquire(ids[first], stream);
          Result<void*> b = a.ok() ? rig.cache->Acquire(ids[second], stream) : Result<void*>(a.status());
          if (!a.ok()) note(a.status());
          else if (!b.ok()) note(b.status());
          if (a.ok() && b.ok()) {
            for (auto [ptr, i] : {std::pair{*a, first}, std::pair{*b, second}}) {
              (void)rig.device->CopyAsync(host.data(), ptr, host.size(),
                                          CopyKind::kDeviceToHost, stream);
              (void)rig.device->StreamSynchronize(stream);
              if (host != data[i]) mismatches++;
            }
          }
          if (a.ok()) (void)rig.cache->Release(ids[first], stream);
          if (b.ok()) (void)rig.cache->Release(ids[second], stream);
          if (a.ok() && b.ok()) {
            successes++;
            break;
          }
          // Let the others finish theirs (and break any lockstep).
          std::this_thread::sleep_for(std::chrono::microseconds(50 + rng() % 200));
        }
      }
      (void)rig.device->StreamSynchronize(stream);
      (void)rig.device->DestroyStream(stream);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_EQ(successes.load(), kThreads * kIterations);
  ASSERT_TRUE(rig.cache->Drain().ok());
  for (BlockId id : ids) EXPECT_EQ(rig.cache->Info(id)->pins, 0u) << id;
  EXPECT_LE(rig.cache->gpu_cached_bytes(), config.gpu_cache_bytes);
}

}  // namespace
}  // namespace tiercache
