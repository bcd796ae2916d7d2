// DeviceAllocator on a device: built twice, once on the emulated device and
// once (label gpu, TIERCACHE_TEST_CUDA) on the real CUDA device, which skips
// when no GPU is present. Every check goes through the Device seam, so the
// same assertions hold for both.
#include "alloc/device_allocator.h"
#include "common/units.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "alloc/emulated_device.h"
#include "tests/alloc/mini_json.h"
#include "tests/alloc/test_device.h"

namespace tiercache {
namespace {

constexpr unsigned long long kMiB = 1ull << 20;

// Holds the stream for `arg` milliseconds: work enqueued after it is late.
void SleepOnStream(void* arg) {
  std::this_thread::sleep_for(std::chrono::milliseconds(reinterpret_cast<uintptr_t>(arg)));
}

// Holds a stream until Open(): fences recorded behind it stay pending, so a
// test can tell a block that needed no new fence from one that got one,
// whatever the timing. Open it before the stream is synchronised or memory
// is released (FreeMemory and UnmapMemory synchronise the device).
class StreamGate {
 public:
  ~StreamGate() { Open(); }
  bool Close(Device& device, Stream stream) { return device.LaunchHostFunc(stream, &Wait, this).ok(); }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  static void Wait(void* arg) {
    auto* gate = static_cast<StreamGate*>(arg);
    std::unique_lock<std::mutex> lock(gate->mutex_);
    gate->cv_.wait(lock, [gate] { return gate->open_; });
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

class DeviceAllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    device_ = MakeTestDevice(&why);
    if (device_ == nullptr) GTEST_SKIP() << "no CUDA device: " << why;
    for (Stream& stream : streams_) {
      Result<Stream> created = device_->CreateStream();
      ASSERT_TRUE(created.ok()) << created.status().ToString();
      stream = *created;
    }
  }
  void TearDown() override {
    allocator_.reset();
    if (device_ == nullptr) return;
    for (Stream stream : streams_) {
      if (stream != nullptr && device_->IsStreamLive(stream)) (void)device_->DestroyStream(stream);
    }
  }
  DeviceAllocator& Make(DeviceAllocatorOptions options = {}) {
    Result<std::unique_ptr<DeviceAllocator>> created = DeviceAllocator::Create(device_, options);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    allocator_ = std::move(*created);
    return *allocator_;
  }
  EmulatedDevice* emulated() { return dynamic_cast<EmulatedDevice*>(device_.get()); }
  void SyncAll() {
    for (Stream stream : streams_) ASSERT_TRUE(device_->StreamSynchronize(stream).ok());
  }
  // Reads `bytes` of device memory back on `stream` (synchronously).
  std::vector<unsigned char> ReadBack(void* pointer, size_t bytes, Stream stream) {
    std::vector<unsigned char> host(bytes);
    EXPECT_TRUE(device_->CopyAsync(host.data(), pointer, bytes, CopyKind::kDeviceToHost, stream).ok());
    EXPECT_TRUE(device_->StreamSynchronize(stream).ok());
    return host;
  }

  std::shared_ptr<Device> device_;
  Stream streams_[4] = {};
  std::unique_ptr<DeviceAllocator> allocator_;
};

TEST_F(DeviceAllocatorTest, AllocatesAlignedUsableBlocks) {
  DeviceAllocator& allocator = Make();
  Stream s = streams_[0];
  std::vector<std::pair<void*, uint64_t>> blocks;
  for (uint64_t bytes : {1ull, 100ull, 512ull, 4097ull, 100000ull, kMiB, kMiB + 1, 7 * kMiB, 40 * kMiB}) {
    Result<void*> p = allocator.Allocate(bytes, s);
    ASSERT_TRUE(p.ok()) << bytes << ": " << p.status().ToString();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(*p) % 256, 0u);
    ASSERT_TRUE(device_->MemsetAsync(*p, static_cast<int>(bytes & 0x7f) + 1, bytes, s).ok());
    blocks.push_back({*p, bytes});
  }
  for (auto& [p, bytes] : blocks) {
    std::vector<unsigned char> host = ReadBack(p, bytes, s);
    EXPECT_EQ(host.front(), (bytes & 0x7f) + 1);
    EXPECT_EQ(host.back(), (bytes & 0x7f) + 1);
  }
  DeviceAllocatorStats stats = allocator.GetStats();
  EXPECT_EQ(stats.allocations, blocks.size());
  EXPECT_GE(stats.allocated_bytes, stats.requested_bytes);
  EXPECT_LE(stats.allocated_bytes, stats.reserved_bytes);
  for (auto& [p, bytes] : blocks) ASSERT_TRUE(allocator.Free(p, s).ok());
  stats = allocator.GetStats();
  EXPECT_EQ(stats.allocated_bytes, 0u);
  EXPECT_EQ(stats.requested_bytes, 0u);
  EXPECT_EQ(stats.frees, blocks.size());
}

TEST_F(DeviceAllocatorTest, ClassifiesRangesAgainstLiveAllocations) {
  DeviceAllocator& allocator = Make();
  using Range = DeviceAllocator::Range;
  Stream s = streams_[0];
  for (uint64_t bytes : {1000ull, 3 * kMiB}) {  // a small block and a large one
    Result<void*> p = allocator.Allocate(bytes, s);
    Result<void*> next = allocator.Allocate(bytes, s);
    ASSERT_TRUE(p.ok() && next.ok());
    char* c = static_cast<char*>(*p);
    EXPECT_EQ(allocator.Classify(c, bytes), Range::kLiveStart);
    EXPECT_EQ(allocator.Classify(c, 0), Range::kLiveStart);
    EXPECT_EQ(allocator.Classify(c + 8, bytes - 8), Range::kLive);
    EXPECT_EQ(allocator.Classify(c + bytes - 1, 1), Range::kLive);  // the last byte
    EXPECT_EQ(allocator.Classify(c, bytes + 1), Range::kNotLive);      // past what was asked for
    EXPECT_EQ(allocator.Classify(c + 1, bytes), Range::kNotLive);
    EXPECT_EQ(allocator.Classify(c + 8, UINT64_MAX), Range::kNotLive);  // no wrap-around
    ASSERT_TRUE(allocator.Free(*p, s).ok());
    EXPECT_EQ(allocator.Classify(c, 1), Range::kNotLive);  // freed (cached on its stream)
    EXPECT_EQ(allocator.Classify(*next, bytes), Range::kLiveStart);
    ASSERT_TRUE(allocator.Free(*next, s).ok());
  }
  int on_the_stack = 0;
  EXPECT_EQ(allocator.Classify(&on_the_stack, sizeof(on_the_stack)), Range::kForeign);
  EXPECT_EQ(allocator.Classify(nullptr, 0), Range::kForeign);
}

TEST_F(DeviceAllocatorTest, BadInputGetsErrorCodesAndLeavesThePoolIntact) {
  DeviceAllocator& allocator = Make(DeviceAllocatorOptions{.budget_bytes = 64 * kMiB});
  Stream s = streams_[0];
  EXPECT_EQ(allocator.Allocate(0, s).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(allocator.Allocate(device_->info().total_memory + 1, s).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(allocator.Allocate(UINT64_MAX, s).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(allocator.Allocate(65 * kMiB, s).status().code(), ErrorCode::kOutOfMemory);

  void* small = *allocator.Allocate(1000, s);
  void* large = *allocator.Allocate(3 * kMiB, s);
  char host[64];
  EXPECT_EQ(allocator.Free(nullptr, s).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(allocator.Free(host, s).code(), ErrorCode::kInvalidArgument);                // foreign
  EXPECT_EQ(allocator.Free(static_cast<char*>(large) + 512, s).code(), ErrorCode::kInvalidArgument);  // interior
  ASSERT_TRUE(allocator.Free(small, s).ok());
  EXPECT_EQ(allocator.Free(small, s).code(), ErrorCode::kInvalidArgument);  // double free

  // Free on a destroyed stream: refused, and the block stays the caller's.
  Stream doomed = streams_[3];
  ASSERT_TRUE(device_->DestroyStream(doomed).ok());
  streams_[3] = nullptr;
  EXPECT_EQ(allocator.Free(large, doomed).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(allocator.Allocate(10, doomed).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(allocator.GetStats().allocated_bytes, 3 * kMiB);
  ASSERT_TRUE(allocator.Free(large, s).ok());

  DeviceAllocatorStats stats = allocator.GetStats();
  EXPECT_EQ(stats.allocated_bytes, 0u);
  EXPECT_EQ(stats.invalid_frees, 5u);
  // Still fully usable.
  Result<void*> again = allocator.Allocate(3 * kMiB, s);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(allocator.Free(*again, s).ok());
}

TEST_F(DeviceAllocatorTest, SameStreamReuseIsImmediate) {
  DeviceAllocator& allocator = Make();
  Stream s = streams_[0];
  for (uint64_t bytes : {4096ull, 5 * kMiB}) {
    void* first = *allocator.Allocate(bytes, s);
    ASSERT_TRUE(device_->LaunchHostFunc(s, SleepOnStream, reinterpret_cast<void*>(20)).ok());
    ASSERT_TRUE(allocator.Free(first, s).ok());
    Result<void*> second = allocator.Allocate(bytes, s);  // the stream's work is still pending
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(*second, first);
    ASSERT_TRUE(allocator.Free(*second, s).ok());
  }
}

// Without device-side waits (reuse_behind_fences off), a block freed on s1
// while s1 still has work queued must not go to s2; once s1 is past the
// free, s2 may take it. The data shows a premature reuse: s1's late memset
// would overwrite what s2 wrote. (With the option on, s2 may take it at
// once behind a wait: CrossStreamReuseBehindAPendingFenceWaitsOnTheDevice.)
TEST_F(DeviceAllocatorTest, CrossStreamReuseOnlyAfterTheEvent) {
  DeviceAllocatorOptions options;
  options.reuse_behind_fences = false;
  DeviceAllocator& allocator = Make(options);
  Stream s1 = streams_[0], s2 = streams_[1];
  constexpr uint64_t kBytes = 256 * 1024;
  void* p = *allocator.Allocate(kBytes, s1);
  ASSERT_TRUE(device_->LaunchHostFunc(s1, SleepOnStream, reinterpret_cast<void*>(50)).ok());
  ASSERT_TRUE(device_->MemsetAsync(p, 0xAA, kBytes, s1).ok());
  ASSERT_TRUE(allocator.Free(p, s1).ok());
  allocator.Trim(UINT64_MAX);  // push s1's cache into the pool behind a fence; release nothing

  void* q = *allocator.Allocate(kBytes, s2);
  EXPECT_NE(q, p) << "reused on another stream before the freeing stream reached the free";
  ASSERT_TRUE(device_->MemsetAsync(q, 0xBB, kBytes, s2).ok());
  SyncAll();
  std::vector<unsigned char> host = ReadBack(q, kBytes, s2);
  EXPECT_EQ(std::count(host.begin(), host.end(), 0xBB), static_cast<long>(kBytes));
  ASSERT_TRUE(allocator.Free(q, s2).ok());

  // s1 is idle now: once its fence is seen complete, s2 may reuse what s1
  // freed, without the pool growing.
  allocator.Trim(UINT64_MAX);
  SyncAll();
  allocator.Trim(UINT64_MAX);  // polls the fences
  uint64_t reserved = allocator.GetStats().reserved_bytes;
  std::vector<void*> taken;
  bool reused = false;
  while (!reused && allocator.GetStats().reserved_bytes == reserved && taken.size() < 64) {
    taken.push_back(*allocator.Allocate(kBytes, s2));
    reused = taken.back() == p;
  }
  EXPECT_TRUE(reused) << "s2 never got the block s1 freed";
  EXPECT_EQ(allocator.GetStats().reserved_bytes, reserved);
  for (void* block : taken) ASSERT_TRUE(allocator.Free(block, s2).ok());
}

// A stream cycling one buffer bigger than its cache limit keeps it, and that
// buffer must not push the stream's small blocks out of the cache on every
// free (each such push costs a fence and the shared pool's lock).
TEST_F(DeviceAllocatorTest, BigCachedBlockDoesNotEvictSmallOnes) {
  DeviceAllocatorOptions options;
  options.stream_cache_bytes = 8 * kMiB;
  DeviceAllocator& allocator = Make(options);
  Stream s = streams_[0];
  std::vector<void*> small;
  for (int i = 0; i < 10; ++i) small.push_back(*allocator.Allocate(4096, s));
  void* big = *allocator.Allocate(100 * kMiB, s);
  ASSERT_TRUE(allocator.Free(big, s).ok());
  for (void* p : small) ASSERT_TRUE(allocator.Free(p, s).ok());
  uint64_t cached_blocks = 0;
  for (const StreamCacheStats& stream : allocator.GetStats().per_stream) {
    if (stream.stream == s) cached_blocks = stream.cached_blocks;
  }
  EXPECT_EQ(cached_blocks, 11u);
  Result<void*> again = allocator.Allocate(100 * kMiB, s);  // the big one, from the cache
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, big);
  ASSERT_TRUE(allocator.Free(*again, s).ok());
}

TEST_F(DeviceAllocatorTest, BudgetIsEnforced) {
  DeviceAllocator& allocator = Make(DeviceAllocatorOptions{.budget_bytes = 16 * kMiB});
  Stream s = streams_[0];
  std::vector<void*> blocks;
  Status last;
  for (int i = 0; i < 64; ++i) {
    Result<void*> p = allocator.Allocate(kMiB + 4096, s);  // large class
    if (!p.ok()) {
      last = p.status();
      break;
    }
    blocks.push_back(*p);
    EXPECT_LE(allocator.GetStats().reserved_bytes, 16 * kMiB);
  }
  EXPECT_EQ(last.code(), ErrorCode::kOutOfMemory) << last.ToString();
  EXPECT_GE(blocks.size(), 12u);  // the budget is used, not wasted
  DeviceAllocatorStats stats = allocator.GetStats();
  EXPECT_LE(stats.peak_reserved_bytes, 16 * kMiB);
  EXPECT_EQ(stats.oom_events, 1u);
  EXPECT_EQ(stats.retries, 1u);
  for (void* p : blocks) ASSERT_TRUE(allocator.Free(p, s).ok());
  // Lowering the budget below what is reserved trims cached segments.
  SyncAll();
  ASSERT_TRUE(allocator.SetBudget(4 * kMiB).ok());
  SyncAll();
  allocator.Trim(0);
  EXPECT_LE(allocator.GetStats().reserved_bytes, 4 * kMiB);
  EXPECT_EQ(allocator.SetBudget(0).code(), ErrorCode::kInvalidArgument);
}

TEST_F(DeviceAllocatorTest, PressureCallbackRunsBeforeOutOfMemoryAndItsBytesAreUsed) {
  DeviceAllocator& allocator = Make(DeviceAllocatorOptions{.budget_bytes = 8 * kMiB});
  Stream s = streams_[0];
  std::vector<void*> cached;  // what a GPU cache tier would hold
  for (int i = 0; i < 4; ++i) cached.push_back(*allocator.Allocate(2 * kMiB, s));
  std::vector<uint64_t> asked;
  allocator.SetPressureCallback([&](uint64_t bytes_needed) -> uint64_t {
    asked.push_back(bytes_needed);
    if (cached.empty()) return 0;
    void* victim = cached.back();
    cached.pop_back();
    EXPECT_TRUE(allocator.Free(victim, s).ok());  // re-entrant Free is allowed
    return 2 * kMiB;
  });
  Result<void*> activation = allocator.Allocate(2 * kMiB, s);
  ASSERT_TRUE(activation.ok()) << activation.status().ToString();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_GE(asked[0], 2 * kMiB);
  EXPECT_EQ(cached.size(), 3u);
  DeviceAllocatorStats stats = allocator.GetStats();
  EXPECT_EQ(stats.pressure_calls, 1u);
  EXPECT_EQ(stats.pressure_freed_bytes, 2 * kMiB);
  EXPECT_EQ(stats.oom_events, 0u);
  EXPECT_LE(stats.reserved_bytes, 8 * kMiB);

  // A callback that cannot help: out-of-memory, after it was asked.
  allocator.SetPressureCallback([&](uint64_t bytes_needed) -> uint64_t {
    asked.push_back(bytes_needed);
    return 0;
  });
  Result<void*> more = allocator.Allocate(2 * kMiB, s);
  EXPECT_EQ(more.status().code(), ErrorCode::kOutOfMemory);
  EXPECT_EQ(asked.size(), 2u);
  EXPECT_EQ(allocator.GetStats().oom_events, 1u);
  ASSERT_TRUE(allocator.Free(*activation, s).ok());
  for (void* p : cached) ASSERT_TRUE(allocator.Free(p, s).ok());
}

TEST_F(DeviceAllocatorTest, TrimReturnsSettledSegments) {
  DeviceAllocator& allocator = Make();
  Stream s = streams_[0];
  std::vector<void*> blocks;
  for (int i = 0; i < 8; ++i) blocks.push_back(*allocator.Allocate(20 * kMiB, s));
  for (int i = 0; i < 64; ++i) blocks.push_back(*allocator.Allocate(3000, s));
  uint64_t reserved = allocator.GetStats().reserved_bytes;
  EXPECT_GE(reserved, 160 * kMiB);
  for (void* p : blocks) ASSERT_TRUE(allocator.Free(p, s).ok());
  allocator.Trim(UINT64_MAX);  // into the pool, fences recorded
  SyncAll();
  uint64_t released = allocator.Trim(0);
  DeviceAllocatorStats stats = allocator.GetStats();
  EXPECT_EQ(released, reserved);
  EXPECT_EQ(stats.reserved_bytes, 0u);
  EXPECT_EQ(stats.segments, 0u);
  EXPECT_EQ(stats.segments_released, stats.segments_allocated);
}

// Separate segments only: in the virtual-memory arena the freed tail stays in
// the stream's cache as its newest large block (kept whatever its size), and
// a threshold release waits for fences recorded by that same free, so when
// the arena's end is released depends on event timing. Trim() covers the
// arena's release (TrimReturnsSettledSegments); a deterministic threshold
// release of the arena is open work (docs/allocator.md).
TEST_F(DeviceAllocatorTest, ReleaseThresholdBoundsCachedMemory) {
  for (bool virtual_memory : {false, true}) {
    SCOPED_TRACE(virtual_memory ? "virtual memory" : "segments");
    DeviceAllocatorOptions options;
    options.release_threshold_bytes = 0;
    options.stream_cache_bytes = 1 * kMiB;
    options.virtual_memory = virtual_memory;
    DeviceAllocator& allocator = Make(options);
    Stream s = streams_[0];
    std::vector<void*> blocks;
    for (int i = 0; i < 4; ++i) blocks.push_back(*allocator.Allocate(40 * kMiB, s));
    uint64_t reserved = allocator.GetStats().reserved_bytes;
    EXPECT_GE(reserved, 160 * kMiB);
    for (void* p : blocks) ASSERT_TRUE(allocator.Free(p, s).ok());
    SyncAll();
    // The last 40 MiB block (the arena's end) is still in the stream cache;
    // the fence recorded when the third was evicted came after its free and
    // has completed, so the next eviction returns it settled and releases
    // what is free: whole segments, or the arena's free end. No fence recorded
    // after the sync needs to complete, so this holds on any timing (a gate
    // on the stream cannot show it: releasing memory synchronises the device).
    void* a = *allocator.Allocate(2 * kMiB, s);
    ASSERT_TRUE(allocator.Free(a, s).ok());
    void* b = *allocator.Allocate(3 * kMiB, s);
    ASSERT_TRUE(allocator.Free(b, s).ok());
    EXPECT_LT(allocator.GetStats().reserved_bytes, 80 * kMiB);
    if (!virtual_memory || device_->MappingGranularity() == 0) {
      EXPECT_GT(allocator.GetStats().segments_released, 0u);
    }
  }
}

// A block that waits in a stream cache past a fence recorded on its stream
// after its free enters the pool settled once that fence has completed,
// rather than behind a fresh fence that may not have completed yet.
TEST_F(DeviceAllocatorTest, CachedBlockSettlesOnAnEarlierCompletedFence) {
  for (bool virtual_memory : {false, true}) {
    SCOPED_TRACE(virtual_memory ? "virtual memory" : "segments");
    DeviceAllocatorOptions options;
    options.stream_cache_bytes = 1 * kMiB;
    options.virtual_memory = virtual_memory;
    DeviceAllocator& allocator = Make(options);
    Stream s = streams_[0];
    void* a = *allocator.Allocate(40 * kMiB, s);
    void* b = *allocator.Allocate(40 * kMiB, s);
    ASSERT_TRUE(allocator.Free(a, s).ok());
    // Overflows the cache: `a` goes to the pool behind a fence recorded now,
    // after `b`'s free; `b` stays cached as the newest large block.
    ASSERT_TRUE(allocator.Free(b, s).ok());
    SyncAll();
    StreamGate gate;  // a fence recorded now could not complete
    ASSERT_TRUE(gate.Close(*device_, s));
    EXPECT_EQ(allocator.Trim(UINT64_MAX), 0u);  // flushes `b` into the pool, releases nothing
    std::string snapshot = allocator.SnapshotJson();
    gate.Open();
    SyncAll();
    EXPECT_NE(snapshot.find("\"settled\":true"), std::string::npos) << snapshot;
    EXPECT_EQ(snapshot.find("\"settled\":false"), std::string::npos) << snapshot;
    EXPECT_EQ(snapshot.find("\"cached\""), std::string::npos) << snapshot;
  }
}

// Before growing, a stream may take a block another stream freed whose
// fence is still pending: it then waits for that fence on the device. The
// data shows a missing wait: s1's late memset would overwrite s2's. With
// the option off, the pool grows instead.
// An engine may destroy a stream while the allocator still caches blocks
// freed on it. Flushing them must not record a fence on the dead stream (a
// real driver faults; the emulated device counts the call): they were
// drained with the stream, so they settle at once and any stream may reuse
// them without the pool growing.
TEST_F(DeviceAllocatorTest, BlocksCachedOnADestroyedStreamSettleWithoutTouchingIt) {
  for (bool behind_fences : {true, false}) {
    SCOPED_TRACE(behind_fences ? "reuse behind fences" : "plain");
    DeviceAllocatorOptions options;
    options.reuse_behind_fences = behind_fences;
    DeviceAllocator& allocator = Make(options);
    Result<Stream> doomed = device_->CreateStream();
    ASSERT_TRUE(doomed.ok());
    void* small = *allocator.Allocate(4096, *doomed);
    void* large = *allocator.Allocate(8 * kMiB, *doomed);
    ASSERT_TRUE(allocator.Free(small, *doomed).ok());
    ASSERT_TRUE(allocator.Free(large, *doomed).ok());
    const uint64_t reserved = allocator.GetStats().reserved_bytes;
    const uint64_t unknown_before = emulated() ? emulated()->stats().unknown_stream_calls : 0;
    ASSERT_TRUE(device_->DestroyStream(*doomed).ok());

    if (behind_fences) {
      // Before growing, other streams' caches are flushed: the doomed
      // stream's blocks come out settled and are taken as they are.
      Result<void*> again = allocator.Allocate(8 * kMiB, streams_[0]);
      ASSERT_TRUE(again.ok()) << again.status().ToString();
      EXPECT_EQ(allocator.GetStats().reserved_bytes, reserved) << "the pool grew instead of reusing";
      EXPECT_EQ(allocator.GetStats().dependent_reuses, 0u) << "no fence was needed";
      ASSERT_TRUE(allocator.Free(*again, streams_[0]).ok());
      ASSERT_TRUE(device_->StreamSynchronize(streams_[0]).ok());
    }
    // Trim flushes every cache; settled blocks leave whole segments free.
    // The block freed on the live stream gets a fresh fence on the way:
    // once the stream has drained, a second trim polls it complete. The
    // dead stream's blocks, had they kept an owner, would never settle.
    allocator.Trim(0);
    ASSERT_TRUE(device_->StreamSynchronize(streams_[0]).ok());
    allocator.Trim(0);
    EXPECT_EQ(allocator.GetStats().reserved_bytes, 0u) << "blocks stayed with the dead stream";
    if (emulated() != nullptr) {
      EXPECT_EQ(emulated()->stats().unknown_stream_calls, unknown_before)
          << "a call named the destroyed stream";
    }
    SyncAll();
  }
}

TEST_F(DeviceAllocatorTest, CrossStreamReuseBehindAPendingFenceWaitsOnTheDevice) {
  constexpr uint64_t kBytes = 40 * kMiB;  // fills a segment of its own without the arena
  for (bool virtual_memory : {false, true}) {
    for (bool behind_fences : {true, false}) {
      SCOPED_TRACE(std::string(virtual_memory ? "virtual memory" : "segments") +
                   (behind_fences ? ", reuse behind fences" : ", grow instead"));
      DeviceAllocatorOptions options;
      options.virtual_memory = virtual_memory;
      options.reuse_behind_fences = behind_fences;
      DeviceAllocator& allocator = Make(options);
      Stream s1 = streams_[0], s2 = streams_[1];
      void* p = *allocator.Allocate(kBytes, s1);
      StreamGate gate;
      ASSERT_TRUE(gate.Close(*device_, s1));
      ASSERT_TRUE(device_->MemsetAsync(p, 0xAA, kBytes, s1).ok());
      ASSERT_TRUE(allocator.Free(p, s1).ok());
      allocator.Trim(UINT64_MAX);  // into the pool behind a fence the gate holds
      const uint64_t reserved = allocator.GetStats().reserved_bytes;

      void* q = *allocator.Allocate(kBytes, s2);
      ASSERT_TRUE(device_->MemsetAsync(q, 0xBB, kBytes, s2).ok());
      DeviceAllocatorStats stats = allocator.GetStats();
      gate.Open();
      SyncAll();
      if (behind_fences) {
        EXPECT_EQ(q, p);
        EXPECT_EQ(stats.reserved_bytes, reserved) << "the pool grew instead of reusing";
        EXPECT_EQ(stats.dependent_reuses, 1u);
      } else {
        EXPECT_NE(q, p);
        EXPECT_GT(stats.reserved_bytes, reserved);
        EXPECT_EQ(stats.dependent_reuses, 0u);
      }
      std::vector<unsigned char> host = ReadBack(q, kBytes, s2);
      EXPECT_EQ(std::count(host.begin(), host.end(), 0xBB), static_cast<long>(kBytes))
          << "s2 wrote before s1's work on the block had run";
      ASSERT_TRUE(allocator.Free(q, s2).ok());
    }
  }
}

// Large blocks share one growable range when the device maps virtual
// memory: four 40 MiB blocks live in one segment, back to back, and the
// reservation grows by whole granules only.
TEST_F(DeviceAllocatorTest, VirtualMemoryArenaGrowsContiguously) {
  uint64_t granularity = device_->MappingGranularity();
  if (granularity == 0) GTEST_SKIP() << "the device maps no virtual memory";
  DeviceAllocator& allocator = Make();
  Stream s = streams_[0];
  std::vector<char*> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(static_cast<char*>(*allocator.Allocate(40 * kMiB, s)));
  for (int i = 1; i < 4; ++i) EXPECT_EQ(blocks[i], blocks[i - 1] + 40 * kMiB);
  DeviceAllocatorStats stats = allocator.GetStats();
  EXPECT_EQ(stats.segments, 1u);
  EXPECT_EQ(stats.reserved_bytes, AlignUp(160 * kMiB, granularity));
  // Every byte is device memory: a copy across the growth boundaries works.
  std::vector<char> host(160 * kMiB, 'x');
  ASSERT_TRUE(device_->CopyAsync(blocks[0], host.data(), host.size(), CopyKind::kHostToDevice, s).ok());
  // A freed block and the free tail merge, so a bigger request maps only what it lacks.
  ASSERT_TRUE(allocator.Free(blocks[3], s).ok());
  char* big = static_cast<char*>(*allocator.Allocate(50 * kMiB, s));
  EXPECT_EQ(big, blocks[3]);
  EXPECT_EQ(allocator.GetStats().reserved_bytes, AlignUp(170 * kMiB, granularity));
  ASSERT_TRUE(allocator.Free(big, s).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(allocator.Free(blocks[i], s).ok());
  allocator.Trim(0);  // into the pool behind a fence
  SyncAll();
  allocator.Trim(0);  // the fence has completed: the whole range unmaps
  EXPECT_EQ(allocator.GetStats().reserved_bytes, 0u);
  EXPECT_EQ(allocator.GetStats().segments, 0u);
}

// Fragmentation at peak (1 - peak requested / peak reserved) on the
// generated inference trace. cudaMallocAsync measured 0.0919 on seed 1 on an
// H100, and the segmented pool 0.105 (emulated) to 0.182 (H100); seeds 3, 5
// and 6 reached 0.17-0.23 with segments. With one growable range the waste
// is the holes the KV reallocations leave plus under one granule at the
// end, 0.06-0.07 on these seeds: seed 1 must beat cudaMallocAsync's figure
// and no seed may pass 0.10. (Seeds whose peak exceeds the 2 GiB test
// device are left out.)
TEST_F(DeviceAllocatorTest, InferenceTraceFragmentationAtPeakIsBounded) {
  if (device_->MappingGranularity() == 0) GTEST_SKIP() << "the device maps no virtual memory";
  for (uint32_t seed : {1u, 3u, 5u, 6u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    InferenceTraceOptions shape;
    shape.seed = seed;
    std::vector<TraceEvent> trace = MakeInferenceTrace(shape);
    DeviceAllocator& allocator = Make();
    Result<ReplayResult> replay = ReplayTrace(allocator, trace, {streams_[0], streams_[1]});
    ASSERT_TRUE(replay.ok()) << replay.status().ToString();
    EXPECT_EQ(replay->failures, 0u);
    EXPECT_GT(replay->peak_reserved_bytes, replay->peak_requested_bytes);
    EXPECT_LT(replay->fragmentation_at_peak, seed == 1 ? 0.0919 : 0.10)
        << replay->peak_reserved_bytes << " reserved for " << replay->peak_requested_bytes;
  }
}

TEST_F(DeviceAllocatorTest, SnapshotIsWellFormedAndMatchesStats) {
  DeviceAllocator& allocator = Make();
  std::vector<std::pair<void*, Stream>> live;
  std::mt19937 random(7);
  for (int i = 0; i < 200; ++i) {
    Stream s = streams_[i % 4];
    uint64_t bytes = random() % 3 == 0 ? (random() % (8 * kMiB)) + 1 : (random() % 20000) + 1;
    live.push_back({*allocator.Allocate(bytes, s), s});
    if (random() % 2 == 0) {
      size_t victim = random() % live.size();
      ASSERT_TRUE(allocator.Free(live[victim].first, live[victim].second).ok());
      live.erase(live.begin() + static_cast<long>(victim));
    }
  }
  DeviceAllocatorStats stats = allocator.GetStats();
  testing_json::Value snapshot;
  ASSERT_NO_THROW(snapshot = testing_json::Parse(allocator.SnapshotJson()));
  EXPECT_EQ(snapshot["stats"]["reserved_bytes"].number, static_cast<double>(stats.reserved_bytes));
  EXPECT_EQ(snapshot["stats"]["allocated_bytes"].number, static_cast<double>(stats.allocated_bytes));
  const auto& segments = snapshot["segments"].items;
  EXPECT_EQ(segments.size(), stats.segments);
  double reserved = 0, allocated = 0, requested = 0;
  size_t allocated_blocks = 0;
  for (const auto& segment : segments) {
    reserved += segment["bytes"].number;
    double covered = 0;
    for (const auto& block : segment["blocks"].items) {
      covered += block["bytes"].number;
      if (block["state"].text == "allocated") {
        allocated += block["bytes"].number;
        requested += block["requested"].number;
        ++allocated_blocks;
      }
    }
    EXPECT_EQ(covered, segment["bytes"].number) << "blocks must tile their segment";
  }
  EXPECT_EQ(reserved, static_cast<double>(stats.reserved_bytes));
  EXPECT_EQ(allocated, static_cast<double>(stats.allocated_bytes));
  EXPECT_EQ(requested, static_cast<double>(stats.requested_bytes));
  EXPECT_EQ(allocated_blocks, live.size());
  for (auto& [p, s] : live) ASSERT_TRUE(allocator.Free(p, s).ok());
}

TEST_F(DeviceAllocatorTest, TraceRecordsAndReplaysToTheSamePeak) {
  InferenceTraceOptions shape;
  shape.layers = 4;
  shape.hidden = 1024;
  shape.decode_steps = 64;
  shape.batch = 4;
  std::vector<TraceEvent> workload = MakeInferenceTrace(shape);
  ASSERT_TRUE(ValidateTrace(workload).ok());

  DeviceAllocatorOptions recording;
  recording.record_trace = true;
  DeviceAllocator& first = Make(recording);
  // Both trace streams on one device stream: with two, whether a fence has
  // completed when polled is a matter of timing, and so is the exact peak.
  std::vector<Stream> streams = {streams_[0], streams_[0]};
  Result<ReplayResult> original = ReplayTrace(first, workload, streams);
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  EXPECT_EQ(original->failures, 0u);
  std::vector<TraceEvent> recorded = first.TakeTrace();
  // Every allocation and free is in the trace, including the final frees.
  ASSERT_EQ(recorded.size(), workload.size());
  EXPECT_EQ(PeakRequestedBytes(recorded), PeakRequestedBytes(workload));
  Result<std::vector<TraceEvent>> parsed = ParseTrace(FormatTrace(recorded));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, recorded);
  SyncAll();

  allocator_.reset();
  DeviceAllocator& second = Make();
  Result<ReplayResult> replayed = ReplayTrace(second, *parsed, streams);
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(replayed->peak_requested_bytes, original->peak_requested_bytes);
  EXPECT_EQ(replayed->peak_reserved_bytes, original->peak_reserved_bytes);
  EXPECT_GE(replayed->peak_reserved_bytes, replayed->peak_requested_bytes);
}

}  // namespace
}  // namespace tiercache
