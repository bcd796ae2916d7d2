// Randomised allocation across 4 streams and 3 threads. Every block is
// written through the device (MemsetAsync on its stream) and read back
// (CopyAsync on the stream that frees it, after a StreamWaitEvent when that
// is another stream) and every byte is checked; live blocks are checked for
// overlap as they are handed out. On the emulated device each copy and memset
// is delayed, so a block reused on another stream before its fence completed
// shows up as a wrong byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "alloc/device_allocator.h"
#include "tests/alloc/test_device.h"

namespace tiercache {
namespace {

struct LiveBlock {
  unsigned char* pointer;
  uint64_t bytes;
  Stream stream;
  unsigned char pattern;
};

struct Readback {
  std::vector<unsigned char> host;
  unsigned char pattern;
};

// [start, end) of every live block, to catch two live blocks overlapping.
class LiveRanges {
 public:
  bool Insert(const unsigned char* pointer, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    uintptr_t start = reinterpret_cast<uintptr_t>(pointer);
    auto next = ranges_.lower_bound(start);
    if (next != ranges_.end() && next->first < start + bytes) return false;
    if (next != ranges_.begin() && std::prev(next)->second > start) return false;
    ranges_[start] = start + bytes;
    return true;
  }
  void Erase(const unsigned char* pointer) {
    std::lock_guard<std::mutex> lock(mutex_);
    ranges_.erase(reinterpret_cast<uintptr_t>(pointer));
  }

 private:
  std::mutex mutex_;
  std::map<uintptr_t, uintptr_t> ranges_;
};

class AllocatorStressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    device_ = MakeTestDevice(&why);
    if (device_ == nullptr) GTEST_SKIP() << "no CUDA device: " << why;
    for (Stream& stream : streams_) stream = *device_->CreateStream();
  }
  void TearDown() override {
    if (device_ == nullptr) return;
    for (Stream stream : streams_) (void)device_->DestroyStream(stream);
  }
  void SyncStreams() {
    for (Stream stream : streams_) ASSERT_TRUE(device_->StreamSynchronize(stream).ok());
  }

  std::shared_ptr<Device> device_;
  Stream streams_[4] = {};
};

TEST_F(AllocatorStressTest, RandomisedAcrossStreamsAndThreadsEveryByteVerified) {
  auto* emulated = dynamic_cast<EmulatedDevice*>(device_.get());
  if (emulated != nullptr) emulated->set_copy_delay(std::chrono::microseconds(30));
  DeviceAllocatorOptions options;
  options.budget_bytes = 512ull << 20;
  options.stream_cache_bytes = 2ull << 20;  // small: blocks move through the shared pool often
  std::unique_ptr<DeviceAllocator> allocator = DeviceAllocator::Create(device_, options).value();
  LiveRanges ranges;
  constexpr int kThreads = 3;
  constexpr int kSteps = 700;

  auto worker = [&](int thread_index) {
    std::mt19937_64 random(1234 + thread_index);
    Event event = *device_->CreateEvent();
    std::vector<LiveBlock> live;
    std::vector<Readback> pending;
    unsigned counter = thread_index * 7;
    auto check_pending = [&] {
      SyncStreams();
      for (const Readback& readback : pending) {
        // All bytes equal the first (memcmp against itself shifted by one)
        // and the first is the pattern: fast even in sanitizer builds.
        const std::vector<unsigned char>& h = readback.host;
        if (h[0] == readback.pattern && std::memcmp(h.data(), h.data() + 1, h.size() - 1) == 0) {
          continue;
        }
        auto wrong = std::find_if(readback.host.begin(), readback.host.end(),
                                  [&](unsigned char c) { return c != readback.pattern; });
        ASSERT_EQ(wrong, readback.host.end())
            << "byte " << (wrong - readback.host.begin()) << " of " << readback.host.size()
            << " is " << int(*wrong) << ", expected " << int(readback.pattern);
      }
      pending.clear();
    };
    auto free_one = [&](size_t index) {
      LiveBlock block = live[index];
      live.erase(live.begin() + static_cast<long>(index));
      Stream free_stream = random() % 2 == 0 ? block.stream : streams_[random() % 4];
      if (free_stream != block.stream) {
        ASSERT_TRUE(device_->RecordEvent(event, block.stream).ok());
        ASSERT_TRUE(device_->StreamWaitEvent(free_stream, event).ok());
      }
      pending.push_back({std::vector<unsigned char>(block.bytes), block.pattern});
      ASSERT_TRUE(device_->CopyAsync(pending.back().host.data(), block.pointer, block.bytes,
                                     CopyKind::kDeviceToHost, free_stream).ok());
      ranges.Erase(block.pointer);
      ASSERT_TRUE(allocator->Free(block.pointer, free_stream).ok());
    };
    for (int step = 0; step < kSteps; ++step) {
      bool allocate = live.empty() || (live.size() < 24 && random() % 100 < 55);
      if (allocate) {
        uint64_t roll = random() % 100;
        uint64_t bytes = roll < 75 ? 1 + random() % (64 << 10)
                         : roll < 97 ? (64 << 10) + random() % (960 << 10)
                                     : (1 << 20) + random() % (3 << 20);
        Stream stream = streams_[random() % 4];
        Result<void*> pointer = allocator->Allocate(bytes, stream);
        ASSERT_TRUE(pointer.ok()) << pointer.status().ToString();
        auto* p = static_cast<unsigned char*>(*pointer);
        ASSERT_TRUE(ranges.Insert(p, bytes)) << "two live blocks overlap";
        if (emulated != nullptr) {
          ASSERT_TRUE(emulated->IsDeviceRange(p, bytes));
        }
        unsigned char pattern = static_cast<unsigned char>(1 + (counter++ % 251));
        ASSERT_TRUE(device_->MemsetAsync(p, pattern, bytes, stream).ok());
        live.push_back({p, bytes, stream, pattern});
      } else {
        free_one(random() % live.size());
      }
      if (pending.size() >= 48) check_pending();
    }
    while (!live.empty()) free_one(live.size() - 1);
    check_pending();
    ASSERT_TRUE(device_->DestroyEvent(event).ok());
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (std::thread& thread : threads) thread.join();

  SyncStreams();
  DeviceAllocatorStats stats = allocator->GetStats();
  EXPECT_EQ(stats.allocated_bytes, 0u);
  EXPECT_EQ(stats.requested_bytes, 0u);
  EXPECT_EQ(stats.allocations, stats.frees);
  EXPECT_EQ(stats.invalid_frees, 0u);
  EXPECT_EQ(stats.oom_events, 0u);
  EXPECT_GT(stats.cross_stream_reuses, 0u) << "the workload should move blocks between streams";
  EXPECT_LE(stats.peak_reserved_bytes, options.budget_bytes);
  allocator->Trim(UINT64_MAX);
  SyncStreams();
  allocator->Trim(0);
  EXPECT_EQ(allocator->GetStats().reserved_bytes, 0u);
}

}  // namespace
}  // namespace tiercache
