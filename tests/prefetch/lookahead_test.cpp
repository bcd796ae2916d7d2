#include <gtest/gtest.h>

#include "common/units.h"
#include "prefetch/lookahead.h"

namespace tiercache {
namespace {

LookaheadInputs In(double gbps, uint64_t block, uint64_t compute_ns, uint64_t budget) {
  LookaheadInputs in;
  in.link_bytes_per_s = gbps * 1e9;
  in.block_bytes = block;
  in.compute_ns = compute_ns;
  in.free_budget_bytes = budget;
  in.max_depth = 64;
  return in;
}

TEST(LookaheadDepth, CoversTheTransferWithOneIntervalOfSlack) {
  // 100 MB at 50 GB/s = 2 ms; 1 ms of compute per block: 2 intervals + 1.
  EXPECT_EQ(LookaheadDepth(In(50, 100'000'000, 1'000'000, 10 * kGiB)), 3u);
  // Compute slower than the copy: one block ahead plus slack.
  EXPECT_EQ(LookaheadDepth(In(50, 100'000'000, 10'000'000, 10 * kGiB)), 2u);
  // Twice the bandwidth halves the transfer: 1 interval + 1.
  EXPECT_EQ(LookaheadDepth(In(100, 100'000'000, 1'000'000, 10 * kGiB)), 2u);
  // A slow link needs deep lookahead: 100 MB at 10 GB/s = 10 ms, 0.5 ms compute.
  EXPECT_EQ(LookaheadDepth(In(10, 100'000'000, 500'000, 10 * kGiB)), 21u);
}

TEST(LookaheadDepth, IsBoundedByTheFreeBudgetAndMaxDepth) {
  EXPECT_EQ(LookaheadDepth(In(10, 100'000'000, 500'000, 250'000'000)), 2u);
  EXPECT_EQ(LookaheadDepth(In(10, 100'000'000, 500'000, 99'999'999)), 0u);
  LookaheadInputs in = In(1, 100'000'000, 1'000, 100 * kGiB);
  in.max_depth = 8;
  EXPECT_EQ(LookaheadDepth(in), 8u);
  // Unknown compute time: as deep as the budget allows.
  EXPECT_EQ(LookaheadDepth(In(50, 1'000'000, 0, 5'000'000)), 5u);
  EXPECT_EQ(LookaheadDepth(In(50, 0, 1000, 5'000'000)), 0u);
}

}  // namespace
}  // namespace tiercache
