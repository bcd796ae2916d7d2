// The concurrency stress load (tiercache-bench stress, tools/bench/stress.h)
// for a few seconds: 8 threads on 4 streams acquiring, releasing,
// prefetching, evicting and saving/restoring activations on overlapping
// blocks in a GPU cache that holds half of them. Every byte read back must
// match, no call may fail unexpectedly, no pin may be left. The TSan build
// runs this same test. TIERCACHE_STRESS_SECONDS makes it longer.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tools/bench/stress.h"

namespace tiercache::bench {
namespace {

TEST(CacheStressTest, EightThreadsFourStreamsEveryByteVerified) {
  StressOptions options;
  options.seconds = 4;
  if (const char* s = std::getenv("TIERCACHE_STRESS_SECONDS"); s != nullptr && *s != '\0') {
    options.seconds = std::atof(s);
  }
  Result<StressReport> report = RunStress(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::fputs(RenderStressReport(*report).c_str(), stdout);
  EXPECT_EQ(0u, report->mismatches) << report->first_mismatch;
  EXPECT_EQ(0u, report->errors) << report->first_error;
  EXPECT_EQ(0u, report->pinned_after);
  // Every kind of call ran, and ran often enough to overlap.
  EXPECT_GT(report->acquires, 100u);
  EXPECT_GT(report->bytes_verified, 0u);
  EXPECT_GT(report->evictions, 0u);
  EXPECT_GT(report->prefetches, 0u);
  EXPECT_GT(report->saves, 0u);
  EXPECT_GT(report->restores, 0u);
}

TEST(CacheStressTest, BadOptionsAreAnError) {
  StressOptions options;
  options.threads = 0;
  EXPECT_EQ(ErrorCode::kInvalidArgument, RunStress(options).status().code());
}

}  // namespace
}  // namespace tiercache::bench
