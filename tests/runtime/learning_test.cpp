// The embedded library learns by itself: through the C API with its default
// config and no hint call, a cyclic layer scan over twice the GPU cache is
// served as well as Belady's MIN from the second pass on, without moving
// more bytes than MIN's misses, and an engine-shaped loop (acquire, work
// enqueued on the stream, release) sees prefetches issued and used.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "prefetch/belady.h"
#include "prefetch/trace_generators.h"
#include "tests/alloc/mini_json.h"
#include "tiercache/tiercache.h"

namespace tiercache {
namespace {

constexpr uint64_t kBlockBytes = 256 * 1024;
constexpr int kBlocks = 16;

struct Open {
  tiercache_runtime* rt = nullptr;
  std::vector<tiercache_block> ids;
  ~Open() { tiercache_close(rt); }
};

// Defaults, plus only the sizes: a GPU cache of `cached` blocks.
void OpenWithDefaults(int cached, Open* o,
                      const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  tiercache_config* config = nullptr;
  ASSERT_EQ(tiercache_config_create(&config), TIERCACHE_OK);
  for (const auto& [key, value] : extra) {
    ASSERT_EQ(tiercache_config_set(config, key.c_str(), value.c_str()), TIERCACHE_OK);
  }
  ASSERT_EQ(tiercache_config_set(config, "gpu_budget_bytes", "64MiB"), TIERCACHE_OK);
  ASSERT_EQ(tiercache_config_set(config, "gpu_cache_bytes",
                                 std::to_string(cached * kBlockBytes).c_str()), TIERCACHE_OK);
  ASSERT_EQ(tiercache_config_set(config, "dram_bytes", "16MiB"), TIERCACHE_OK);
  ASSERT_EQ(tiercache_config_set(config, "chunk_bytes", "64KiB"), TIERCACHE_OK);
  ASSERT_EQ(tiercache_open(config, &o->rt), TIERCACHE_OK) << tiercache_last_error();
  tiercache_config_destroy(config);
  std::vector<unsigned char> data(kBlockBytes);
  for (int i = 0; i < kBlocks; ++i) {
    std::memset(data.data(), 17 * i + 3, data.size());
    tiercache_block id = 0;
    ASSERT_EQ(tiercache_register_buffer(o->rt, ("layer" + std::to_string(i)).c_str(), data.data(),
                                        data.size(), "dram", TIERCACHE_NO_GROUP, &id),
              TIERCACHE_OK);
    o->ids.push_back(id);
  }
}

testing_json::Value Stats(tiercache_runtime* rt) {
  size_t needed = 0;
  tiercache_stats_json(rt, nullptr, 0, &needed);
  std::string text(needed, '\0');
  EXPECT_EQ(tiercache_stats_json(rt, text.data(), text.size(), nullptr), TIERCACHE_OK);
  text.resize(needed - 1);
  return testing_json::Parse(text);
}

struct GpuCounts {
  uint64_t hits, misses, bytes_in;
};

GpuCounts Gpu(tiercache_runtime* rt) {
  const testing_json::Value stats = Stats(rt);
  const testing_json::Value& gpu = stats["tiers"].items.at(0);
  EXPECT_EQ(gpu["name"].text, "gpu");
  return {static_cast<uint64_t>(gpu["hits"].number), static_cast<uint64_t>(gpu["misses"].number),
          static_cast<uint64_t>(gpu["bytes_in"].number)};
}

// One pass over the layers, one at a time: acquire, read its first bytes
// back in stream order and check them, release.
void ServePass(const Open& o, void* stream) {
  std::vector<unsigned char> seen(16);
  for (int i = 0; i < kBlocks; ++i) {
    void* ptr = nullptr;
    ASSERT_EQ(tiercache_acquire(o.rt, o.ids[i], stream, &ptr), TIERCACHE_OK) << tiercache_last_error();
    ASSERT_EQ(tiercache_copy_to_host(o.rt, seen.data(), ptr, seen.size(), stream), TIERCACHE_OK);
    ASSERT_EQ(tiercache_stream_synchronize(o.rt, stream), TIERCACHE_OK);
    ASSERT_EQ(seen[0], static_cast<unsigned char>(17 * i + 3)) << "layer " << i;
    ASSERT_EQ(tiercache_release(o.rt, o.ids[i], stream), TIERCACHE_OK);
  }
}

TEST(Learning, CyclicScanReachesMinFromTheSecondPassWithNoHints) {
  constexpr int kCached = kBlocks / 2;
  constexpr int kPasses = 8;
  Open o;
  ASSERT_NO_FATAL_FAILURE(OpenWithDefaults(kCached, &o));
  void* stream = nullptr;
  ASSERT_EQ(tiercache_stream_create(o.rt, &stream), TIERCACHE_OK);
  GpuCounts after_first{};
  for (int pass = 0; pass < kPasses; ++pass) {
    ASSERT_NO_FATAL_FAILURE(ServePass(o, stream)) << "pass " << pass;
    if (pass == 0) {
      ASSERT_EQ(tiercache_drain(o.rt), TIERCACHE_OK);
      after_first = Gpu(o.rt);
    }
  }
  ASSERT_EQ(tiercache_drain(o.rt), TIERCACHE_OK);
  const GpuCounts end = Gpu(o.rt);
  // MIN on the same passes, a cache of kCached blocks, counted the same way.
  auto trace = GenerateTrace("dense:layers=16,steps=" + std::to_string(kPasses) + ",bytes=1");
  ASSERT_TRUE(trace.ok());
  auto min = RunBelady(*trace, kCached, BeladyVariant::kFarthest);
  ASSERT_TRUE(min.ok());
  auto first = GenerateTrace("dense:layers=16,steps=1,bytes=1");
  auto min_first = RunBelady(*first, kCached, BeladyVariant::kFarthest);
  const uint64_t min_hits = min->hits - min_first->hits;
  const uint64_t min_misses = min->misses - min_first->misses;
  const uint64_t hits = end.hits - after_first.hits;
  EXPECT_GE(static_cast<double>(hits), 0.99 * static_cast<double>(min_hits))
      << hits << " hits against MIN's " << min_hits;
  // And no thrashing: no more bytes than MIN's misses plus one block a pass
  // (the double buffer: the next layer's copy starts while this one is in
  // use, evicting what MIN evicts at the next acquire, a moment earlier),
  // and two blocks in flight where the measured passes begin and end.
  EXPECT_LE(end.bytes_in - after_first.bytes_in, (min_misses + kPasses + 2) * kBlockBytes);
  const testing_json::Value stats = Stats(o.rt);
  EXPECT_EQ(stats["prefetch"]["mode"].text, "learn");
  EXPECT_EQ(stats["gpu_policy_state"]["name"].text, "next-use");
  EXPECT_EQ(stats["gpu_policy_state"]["active"].text, "next-use");
  ASSERT_EQ(tiercache_stream_destroy(o.rt, stream), TIERCACHE_OK);
}

// Once the order is known (two passes), a cycle larger than the GPU cache
// is served by a plan: a fixed part kept for the whole cycle, the rest
// streamed through a ring of one block's room, or two when less than half
// the cycle fits (so each copy overlaps the work on the block before it).
// Every pass then moves exactly the blocks not kept; the kept part never
// moves.
TEST(Learning, ACycleLargerThanTheCacheIsPlannedAsAKeptPartAndARing) {
  struct Case {
    int cached;
    uint64_t slots;
  };
  for (const Case c : {Case{10, 1}, Case{6, 2}}) {
    SCOPED_TRACE("cache of " + std::to_string(c.cached) + " blocks");
    Open o;
    ASSERT_NO_FATAL_FAILURE(OpenWithDefaults(c.cached, &o));
    void* stream = nullptr;
    ASSERT_EQ(tiercache_stream_create(o.rt, &stream), TIERCACHE_OK);
    for (int p = 0; p < 3; ++p) ASSERT_NO_FATAL_FAILURE(ServePass(o, stream));  // learn, then adopt the plan
    ASSERT_EQ(tiercache_drain(o.rt), TIERCACHE_OK);
    const GpuCounts before = Gpu(o.rt);
    const testing_json::Value plan = Stats(o.rt)["prefetch"]["cycle_plan"];
    EXPECT_EQ(plan["period"].number, kBlocks);
    EXPECT_EQ(plan["ring_slots"].number, c.slots);
    EXPECT_EQ(plan["kept_blocks"].number, c.cached - c.slots);
    constexpr int kMeasured = 4;
    for (int p = 0; p < kMeasured; ++p) ASSERT_NO_FATAL_FAILURE(ServePass(o, stream));
    ASSERT_EQ(tiercache_drain(o.rt), TIERCACHE_OK);
    const GpuCounts after = Gpu(o.rt);
    const uint64_t streamed = kBlocks - (c.cached - c.slots);
    const uint64_t uploads = (after.bytes_in - before.bytes_in) / kBlockBytes;
    // One either way where the measured passes begin and end: the next
    // pass's first streamed block may be prefetched before the count.
    EXPECT_GE(uploads + 1, kMeasured * streamed);
    EXPECT_LE(uploads, kMeasured * streamed + 1);
    EXPECT_EQ(after.hits + after.misses - before.hits - before.misses, kMeasured * kBlocks);
    ASSERT_EQ(tiercache_stream_destroy(o.rt, stream), TIERCACHE_OK);
  }
}

TEST(Learning, TheCyclePlanCanBeTurnedOff) {
  Open o;
  ASSERT_NO_FATAL_FAILURE(OpenWithDefaults(6, &o, {{"cycle_plan", "false"}}));
  void* stream = nullptr;
  ASSERT_EQ(tiercache_stream_create(o.rt, &stream), TIERCACHE_OK);
  for (int pass = 0; pass < 4; ++pass) {
    for (int i = 0; i < kBlocks; ++i) {
      void* ptr = nullptr;
      ASSERT_EQ(tiercache_acquire(o.rt, o.ids[i], stream, &ptr), TIERCACHE_OK) << tiercache_last_error();
      ASSERT_EQ(tiercache_release(o.rt, o.ids[i], stream), TIERCACHE_OK);
    }
  }
  ASSERT_EQ(tiercache_drain(o.rt), TIERCACHE_OK);
  const testing_json::Value plan = Stats(o.rt)["prefetch"]["cycle_plan"];
  EXPECT_EQ(plan["ring_slots"].number, 0);
  EXPECT_EQ(plan["kept_blocks"].number, 0);
  ASSERT_EQ(tiercache_stream_destroy(o.rt, stream), TIERCACHE_OK);
}

// An engine that holds two blocks at once (a layer's two halves, acquired
// together, released together) needs a ring slot of both: the plan sizes
// its slot to the most bytes held at once, so the pair streams through it
// and the kept part still never moves.
TEST(Learning, ThePlansRingHoldsWhatTheEngineHoldsAtOnce) {
  constexpr int kCached = 10;
  Open o;
  ASSERT_NO_FATAL_FAILURE(OpenWithDefaults(kCached, &o));
  void* stream = nullptr;
  ASSERT_EQ(tiercache_stream_create(o.rt, &stream), TIERCACHE_OK);
  std::vector<unsigned char> seen(16);
  auto pass = [&] {
    for (int layer = 0; layer < kBlocks / 2; ++layer) {
      void* ptr[2] = {nullptr, nullptr};
      for (int half = 0; half < 2; ++half) {
        ASSERT_EQ(tiercache_acquire(o.rt, o.ids[2 * layer + half], stream, &ptr[half]), TIERCACHE_OK)
            << tiercache_last_error();
      }
      for (int half = 0; half < 2; ++half) {
        ASSERT_EQ(tiercache_copy_to_host(o.rt, seen.data(), ptr[half], seen.size(), stream), TIERCACHE_OK);
        ASSERT_EQ(tiercache_stream_synchronize(o.rt, stream), TIERCACHE_OK);
        ASSERT_EQ(seen[0], static_cast<unsigned char>(17 * (2 * layer + half) + 3));
      }
      for (int half = 0; half < 2; ++half) {
        ASSERT_EQ(tiercache_release(o.rt, o.ids[2 * layer + half], stream), TIERCACHE_OK);
      }
    }
  };
  for (int p = 0; p < 4; ++p) ASSERT_NO_FATAL_FAILURE(pass());
  ASSERT_EQ(tiercache_drain(o.rt), TIERCACHE_OK);
  const GpuCounts before = Gpu(o.rt);
  const testing_json::Value plan = Stats(o.rt)["prefetch"]["cycle_plan"];
  EXPECT_EQ(plan["ring_slots"].number, 1);
  EXPECT_EQ(plan["kept_blocks"].number, kCached - 2);
  constexpr int kMeasured = 4;
  for (int p = 0; p < kMeasured; ++p) ASSERT_NO_FATAL_FAILURE(pass());
  ASSERT_EQ(tiercache_drain(o.rt), TIERCACHE_OK);
  const uint64_t uploads = (Gpu(o.rt).bytes_in - before.bytes_in) / kBlockBytes;
  EXPECT_GE(uploads + 1, kMeasured * (kBlocks - (kCached - 2)));
  EXPECT_LE(uploads, kMeasured * (kBlocks - (kCached - 2)) + 2);
  ASSERT_EQ(tiercache_stream_destroy(o.rt, stream), TIERCACHE_OK);
}

// The way framework hooks call it: one thread, acquire in a pre-hook, work
// enqueued on the stream (it reads the whole block), release in the
// post-hook, the host never waiting per layer but spending some time of its
// own per layer (a framework's dispatch). Prefetches are issued ahead and
// used, and the derived lookahead is in the stats.
TEST(Learning, EngineShapedLoopGetsPrefetchesWithoutHints) {
  Open o;
  ASSERT_NO_FATAL_FAILURE(OpenWithDefaults(4, &o));
  void* stream = nullptr;
  ASSERT_EQ(tiercache_stream_create(o.rt, &stream), TIERCACHE_OK);
  std::vector<unsigned char> out(kBlockBytes);
  void* scratch = nullptr;
  ASSERT_EQ(tiercache_device_alloc(o.rt, kBlockBytes, stream, &scratch), TIERCACHE_OK);
  for (int step = 0; step < 6; ++step) {
    for (int i = 0; i < kBlocks; ++i) {
      void* ptr = nullptr;
      ASSERT_EQ(tiercache_acquire(o.rt, o.ids[i], stream, &ptr), TIERCACHE_OK) << tiercache_last_error();
      // The "layer": a copy of the whole block, enqueued, not waited for.
      ASSERT_EQ(tiercache_copy_to_host(o.rt, out.data(), ptr, kBlockBytes, stream), TIERCACHE_OK);
      ASSERT_EQ(tiercache_release(o.rt, o.ids[i], stream), TIERCACHE_OK);
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(1000);
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    ASSERT_EQ(tiercache_stream_synchronize(o.rt, stream), TIERCACHE_OK);  // end of a step
    EXPECT_EQ(out[kBlockBytes - 1], static_cast<unsigned char>(17 * (kBlocks - 1) + 3));
  }
  ASSERT_EQ(tiercache_drain(o.rt), TIERCACHE_OK);
  const testing_json::Value stats = Stats(o.rt);
  const testing_json::Value& p = stats["prefetch"];
  EXPECT_GT(p["issued"].number, 0);
  EXPECT_GT(p["useful"].number, 0.5 * p["issued"].number);
  EXPECT_GE(p["lookahead"].number, 1);
  EXPECT_GT(p["top1_accuracy"].number, 0.9);
  const GpuCounts gpu = Gpu(o.rt);
  // After the first step most acquires find their block on the GPU
  // (resident or arriving); on an idle machine nearly all do, and a loaded
  // one may delay the prefetch thread past some of them.
  EXPECT_GE(gpu.hits, 5u * kBlocks / 2) << gpu.hits << " hits, " << gpu.misses << " misses";
  ASSERT_EQ(tiercache_device_free(o.rt, scratch, stream), TIERCACHE_OK);
  ASSERT_EQ(tiercache_stream_destroy(o.rt, stream), TIERCACHE_OK);
}

}  // namespace
}  // namespace tiercache
