#include "tiers/extent_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace tiercache {
namespace {

TEST(ExtentAllocator, BestFitSplitsAndCoalesces) {
  ExtentAllocator a(1024, 64);
  Extent x = *a.Allocate(100);  // 128
  Extent y = *a.Allocate(64);
  Extent z = *a.Allocate(1);
  EXPECT_EQ(0u, x.offset);
  EXPECT_EQ(128u, y.offset);
  EXPECT_EQ(192u, z.offset);
  EXPECT_EQ(256u, a.used());
  ASSERT_TRUE(a.Free(y).ok());
  // Best fit: a 64-byte request reuses y's hole rather than the large tail.
  EXPECT_EQ(128u, a.Allocate(10)->offset);
  ASSERT_TRUE(a.Free(Extent{128, 10}).ok());
  ASSERT_TRUE(a.Free(x).ok());
  ASSERT_TRUE(a.Free(z).ok());
  EXPECT_EQ(0u, a.used());
  EXPECT_EQ(1024u, a.largest_free());
}

TEST(ExtentAllocator, RejectsDoubleFreeForeignAndOverrun) {
  ExtentAllocator a(4096, 512);
  Extent x = *a.Allocate(512);
  EXPECT_EQ(ErrorCode::kInvalidArgument, a.Free(Extent{512, 512}).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, a.Free(Extent{0, 4096}).code());
  EXPECT_TRUE(a.Free(x).ok());
  EXPECT_EQ(ErrorCode::kInvalidArgument, a.Free(x).code());
  EXPECT_EQ(ErrorCode::kOutOfSpace, a.Allocate(4097).status().code());
}

TEST(ExtentAllocator, ReserveRestoresExactRanges) {
  ExtentAllocator a(8192, 1024);
  ASSERT_TRUE(a.Reserve(Extent{2048, 1000}).ok());
  EXPECT_EQ(ErrorCode::kAlreadyExists, a.Reserve(Extent{2048, 1}).code());
  EXPECT_EQ(ErrorCode::kAlreadyExists, a.Reserve(Extent{1024, 2048}).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, a.Reserve(Extent{100, 10}).code());
  EXPECT_TRUE(a.IsLive(Extent{2048, 1000}));
  EXPECT_EQ(0u, a.Allocate(2048)->offset);
  EXPECT_EQ(3072u, a.Allocate(1)->offset);
}

TEST(ExtentAllocator, RandomisedNeverOverlaps) {
  ExtentAllocator a(1 << 20, 256);
  std::mt19937 rng(7);
  std::vector<Extent> live;
  for (int i = 0; i < 20000; ++i) {
    if (live.empty() || rng() % 3 != 0) {
      Result<Extent> e = a.Allocate(1 + rng() % 20000);
      if (e.ok()) live.push_back(*e);
    } else {
      size_t k = rng() % live.size();
      ASSERT_TRUE(a.Free(live[k]).ok());
      live.erase(live.begin() + k);
    }
  }
  std::sort(live.begin(), live.end(), [](auto& l, auto& r) { return l.offset < r.offset; });
  uint64_t used = 0;
  for (size_t i = 0; i < live.size(); ++i) {
    used += (live[i].length + 255) / 256 * 256;
    if (i > 0) {
      ASSERT_LE(live[i - 1].offset + live[i - 1].length, live[i].offset);
    }
  }
  EXPECT_EQ(used, a.used());
}

}  // namespace
}  // namespace tiercache
