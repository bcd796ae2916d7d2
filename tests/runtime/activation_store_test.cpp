#include "runtime/activation_store.h"

#include <atomic>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "tests/runtime/runtime_test_util.h"

namespace tiercache {
namespace {

using testing::CacheRig;
using testing::FaultyTier;
using testing::Pattern;
using testing::SmallConfig;

struct StoreRig {
  CacheRig rig;
  FaultyTier* nvme;
  std::unique_ptr<ActivationStore> store;

  explicit StoreRig(std::chrono::microseconds delay = std::chrono::microseconds(0),
                    RuntimeConfig config = SmallConfig())
      : rig(config, 64 * kMiB, delay) {
    nvme = rig.Adopt(std::make_unique<FaultyTier>("nvme", 16 * kMiB));
    store = ActivationStore::Create(rig.cache.get(), rig.allocator.get(), nvme).value();
  }
  ~StoreRig() { store.reset(); }

  // Device memory holding `data`, written on the rig's stream.
  void* Upload(const std::vector<unsigned char>& data) {
    void* ptr = rig.allocator->Allocate(data.size(), rig.stream).value();
    EXPECT_TRUE(rig.device->CopyAsync(ptr, data.data(), data.size(), CopyKind::kHostToDevice,
                                      rig.stream).ok());
    return ptr;
  }
};

TEST(ActivationStoreTest, SaveRestoreRoundTripFreesDeviceMemoryBehindTheCopy) {
  // Slow copies: if the pool handed the saved memory out before the save's
  // copy had read it, the memset below would corrupt the saved bytes.
  StoreRig s(std::chrono::microseconds(2000));
  const auto data = Pattern(192 * kKiB, 1);
  void* ptr = s.Upload(data);
  auto handle = s.store->Save(ptr, data.size(), s.rig.stream);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  const uint64_t allocated_after_save = s.rig.allocator->GetStats().allocated_bytes;
  void* reuse = s.rig.allocator->Allocate(data.size(), s.rig.stream).value();
  ASSERT_TRUE(s.rig.device->MemsetAsync(reuse, 0, data.size(), s.rig.stream).ok());
  auto restored = s.store->Restore(*handle, s.rig.stream);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(s.rig.ReadBack(*restored, data.size()), data);
  EXPECT_EQ(allocated_after_save, 0u);  // the saved block went back to the pool at once
  ASSERT_TRUE(s.rig.allocator->Free(reuse, s.rig.stream).ok());
  ASSERT_TRUE(s.rig.allocator->Free(*restored, s.rig.stream).ok());
  EXPECT_EQ(s.store->Restore(*handle, s.rig.stream).status().code(), ErrorCode::kNotFound);
  const auto st = s.store->stats();
  EXPECT_EQ(st.saves, 1u);
  EXPECT_EQ(st.restores, 1u);
  EXPECT_EQ(st.spills, 0u);
  EXPECT_EQ(st.live, 0u);
}

TEST(ActivationStoreTest, SpillsToNvmeWhenDramIsFullAndRestoresInReverse) {
  StoreRig s;
  // DRAM is 8 MiB (minus the staging ring): 12 saves of 1 MiB must spill.
  std::vector<std::vector<unsigned char>> data;
  std::vector<ActivationHandle> handles;
  for (int i = 0; i < 12; ++i) {
    data.push_back(Pattern(1 * kMiB + 100, 10 + i));
    auto h = s.store->Save(s.Upload(data[i]), data[i].size(), s.rig.stream);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    handles.push_back(*h);
  }
  EXPECT_GT(s.store->stats().spills, 0u);
  std::vector<ActivationHandle> reverse(handles.rbegin(), handles.rend());
  ASSERT_TRUE(s.store->PrefetchRestore({reverse[0], reverse[1], reverse[2]}).ok());
  for (int i = 11; i >= 0; --i) {
    auto ptr = s.store->Restore(handles[i], s.rig.stream);
    ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
    EXPECT_EQ(s.rig.ReadBack(*ptr, data[i].size()), data[i]) << i;
    ASSERT_TRUE(s.rig.allocator->Free(*ptr, s.rig.stream).ok());
  }
  EXPECT_EQ(s.store->stats().prefetched_restores, 3u);
  EXPECT_EQ(s.store->stats().host_bytes, 0u);
}

TEST(ActivationStoreTest, CorruptSpillIsDetectedAndRetryable) {
  StoreRig s;
  // Fill DRAM so the next save spills.
  std::vector<ActivationHandle> fill;
  Result<ActivationHandle> h = Status::Ok();
  const auto data = Pattern(2 * kMiB, 77);
  while (s.store->stats().spills == 0) {
    h = s.store->Save(s.Upload(data), data.size(), s.rig.stream);
    ASSERT_TRUE(h.ok());
    fill.push_back(*h);
  }
  ASSERT_TRUE(s.rig.cache->Drain().ok());
  s.nvme->FailNextReads(-1, FaultAction::kCorruptRead);
  EXPECT_EQ(s.store->Restore(fill.back(), s.rig.stream).status().code(), ErrorCode::kCorruption);
  s.nvme->Heal();
  auto ptr = s.store->Restore(fill.back(), s.rig.stream);  // the handle survived
  ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
  EXPECT_EQ(s.rig.ReadBack(*ptr, data.size()), data);
  ASSERT_TRUE(s.rig.allocator->Free(*ptr, s.rig.stream).ok());
  for (size_t i = 0; i + 1 < fill.size(); ++i) EXPECT_TRUE(s.store->Discard(fill[i]).ok());
  EXPECT_EQ(s.store->stats().live, 0u);
}

// A caller that keeps its memory (free_device = false) may overwrite it once
// a stream that WaitSaved made wait has passed the wait: here the host does,
// right after synchronising that stream, while the copies are slow. Without
// the wait the stream is empty, the overwrite comes first and the restored
// bytes are zeros.
TEST(ActivationStoreTest, KeptMemoryIsReusableOnceAStreamWaitedForTheSave) {
  StoreRig s(std::chrono::microseconds(3000));
  Stream other = s.rig.device->CreateStream().value();
  std::vector<ActivationHandle> spilled;
  for (bool spill : {false, true}) {
    if (spill) {  // fill DRAM so the next save goes to NVMe, through staging
      const auto fill = Pattern(2 * kMiB, 5);
      while (s.store->stats().spills == 0) {
        auto h = s.store->Save(s.Upload(fill), fill.size(), s.rig.stream);
        ASSERT_TRUE(h.ok()) << h.status().ToString();
        spilled.push_back(*h);
      }
      // The uploads read `fill` asynchronously: done before it is freed
      // (TSan caught the free racing the last copy).
      ASSERT_TRUE(s.rig.device->StreamSynchronize(s.rig.stream).ok());
    }
    const auto data = Pattern(3 * kMiB, spill ? 9 : 8);
    void* ptr = s.Upload(data);
    ASSERT_TRUE(s.rig.device->StreamSynchronize(s.rig.stream).ok());  // only the save is slow now
    auto handle = s.store->Save(ptr, data.size(), s.rig.stream, /*free_device=*/false);
    ASSERT_TRUE(handle.ok()) << handle.status().ToString();
    ASSERT_TRUE(s.store->WaitSaved(*handle, other).ok());
    ASSERT_TRUE(s.rig.device->StreamSynchronize(other).ok());
    std::memset(ptr, 0, data.size());  // emulated device memory is host memory
    auto restored = s.store->Restore(*handle, s.rig.stream);
    ASSERT_TRUE(restored.ok()) << restored.status().ToString();
    EXPECT_EQ(s.rig.ReadBack(*restored, data.size()), data) << (spill ? "spilled" : "dram");
    EXPECT_EQ(s.store->WaitSaved(*handle, other).code(), ErrorCode::kNotFound);  // consumed
    ASSERT_TRUE(s.rig.allocator->Free(*restored, s.rig.stream).ok());
    ASSERT_TRUE(s.rig.allocator->Free(ptr, s.rig.stream).ok());
  }
  for (ActivationHandle h : spilled) EXPECT_TRUE(s.store->Discard(h).ok());
  EXPECT_EQ(s.store->WaitSaved(42, other).code(), ErrorCode::kNotFound);
  ASSERT_TRUE(s.rig.device->DestroyStream(other).ok());
}

TEST(ActivationStoreTest, SavesBeyondThePendingBoundAreRefusedUntilTheCopiesRun) {
  RuntimeConfig config = SmallConfig();
  config.activation_pending_bytes = 300 * kKiB;
  StoreRig s(std::chrono::microseconds(0), config);
  const auto a = Pattern(200 * kKiB, 1), b = Pattern(200 * kKiB, 2), c = Pattern(64 * kKiB, 3);
  void* pa = s.Upload(a);
  void* pb = s.Upload(b);
  void* pc = s.Upload(c);
  // Work on the stream that has not run yet: the first save waits behind it.
  std::atomic<bool> gate{false};
  ASSERT_TRUE(s.rig.device->LaunchHostFunc(s.rig.stream, [](void* g) {
    while (!static_cast<std::atomic<bool>*>(g)->load()) std::this_thread::yield();
  }, &gate).ok());
  auto ha = s.store->Save(pa, a.size(), s.rig.stream);
  ASSERT_TRUE(ha.ok()) << "none pending: never refused, " << ha.status().ToString();
  auto hb = s.store->Save(pb, b.size(), s.rig.stream);
  EXPECT_EQ(hb.status().code(), ErrorCode::kBusy) << "200 + 200 KiB pending > 300 KiB";
  auto hc = s.store->Save(pc, c.size(), s.rig.stream);
  ASSERT_TRUE(hc.ok()) << "200 + 64 KiB fits: " << hc.status().ToString();
  EXPECT_EQ(s.store->stats().refused_pending, 1u);
  EXPECT_EQ(s.store->stats().saves, 2u);
  gate = true;
  ASSERT_TRUE(s.rig.device->StreamSynchronize(s.rig.stream).ok());
  ASSERT_TRUE(s.rig.cache->transfer().Drain().ok());
  hb = s.store->Save(pb, b.size(), s.rig.stream);  // the refused memory was still the caller's
  ASSERT_TRUE(hb.ok()) << hb.status().ToString();
  for (auto [handle, data] : {std::pair{*ha, &a}, std::pair{*hb, &b}, std::pair{*hc, &c}}) {
    auto restored = s.store->Restore(handle, s.rig.stream);
    ASSERT_TRUE(restored.ok()) << restored.status().ToString();
    EXPECT_EQ(s.rig.ReadBack(*restored, data->size()), *data);
    ASSERT_TRUE(s.rig.allocator->Free(*restored, s.rig.stream).ok());
  }
}

TEST(ActivationStoreTest, BadArguments) {
  StoreRig s;
  EXPECT_EQ(s.store->Save(nullptr, 10, s.rig.stream).status().code(), ErrorCode::kInvalidArgument);
  int x = 0;
  EXPECT_EQ(s.store->Save(&x, 0, s.rig.stream).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.store->Discard(42).code(), ErrorCode::kNotFound);
  EXPECT_EQ(s.store->PrefetchRestore({42}).code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace tiercache
