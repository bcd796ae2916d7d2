// The preload library with a GPU (label gpu; skips without one): the cache
// runtime it hosts and the application's allocations share one budget, and
// the per-thread default streams of two threads keep their blocks apart.
#include <string>

#include <gtest/gtest.h>

#include "tests/preload/probe_runner.h"

namespace {
using namespace preload_test;

// With a GPU: PyTorch-style allocations and the cache share one budget. A
// 256 MiB cached block must give way to a 900 MiB cudaMalloc under a 1 GiB
// budget, and come back on the next acquire.
TEST(PreloadGpu, CachedBlocksGiveWayToTheApplication) {
  ProbeRun run = RunProbe(TIERCACHE_PROBE, {"--shared-budget"}, true,
                          {{"TIERCACHE_GPU_BUDGET_BYTES", "1GiB"}, {"TIERCACHE_DRAM_BYTES", "512MiB"},
                           {"TIERCACHE_REPORT", "1"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  if (Value(run.out, "runtime") != "0") {
    EXPECT_EQ(Value(run.out, "runtime"), "-7");  // TIERCACHE_ERR_UNAVAILABLE
    GTEST_SKIP() << "no GPU: the hosted runtime does not open";
  }
  for (const char* step : {"register", "acquire", "release", "drain", "app_malloc", "app_free",
                           "acquire_again", "release_again"}) {
    EXPECT_EQ(Value(run.out, step), "0") << step << "\n" << run.out << run.err;
  }
  EXPECT_EQ(Value(run.out, "close_refused"), "-1");
}

// cudaStreamPerThread is one handle for a different stream in every thread.
// A block one thread freed on it, with a write still queued behind half a
// second of its stream's work, must not go to another thread's per-thread
// stream before that write has landed (the pool hands a block freed on a
// stream back to the same handle at once).
TEST(PreloadGpu, PerThreadStreamsDoNotReuseEachOthersFreedBlocksEarly) {
  ProbeRun run = RunProbe(TIERCACHE_PROBE, {"--per-thread-reuse"}, true);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  if (Value(run.out, "reuse_malloc") != "0") GTEST_SKIP() << "no GPU: " << run.out;
  std::string stats = Value(run.err, "stats");
  EXPECT_EQ(Count(stats, "cudaMallocAsync", "served"), 2u) << stats;  // both from the pool
  for (const char* step : {"reuse_first", "reuse_second", "reuse_sync", "reuse_free"}) {
    EXPECT_EQ(Value(run.out, step), "0") << step << "\n" << run.out;
  }
  EXPECT_EQ(Value(run.out, "reuse_intact"), "1") << run.out;
}

}  // namespace
