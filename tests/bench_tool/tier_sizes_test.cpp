// How replays size their tiers, and which sizes are refused as bad input.
#include <gtest/gtest.h>

#include "common/units.h"
#include "tools/bench/tier_stack.h"

namespace tiercache::bench {
namespace {

constexpr uint64_t kPlenty = 1ull << 50;

Options With(std::initializer_list<std::pair<uint64_t Options::*, uint64_t>> sizes,
             std::initializer_list<const char*> names) {
  Options options;
  for (const auto& [field, value] : sizes) options.*field = value;
  for (const char* name : names) options.explicitly_set[name] = "set";
  return options;
}

TEST(TierSizesTest, DefaultsSpreadTheWorkingSetOverEveryTier) {
  Result<TierSizes> sizes = ChooseTierSizes(Options(), 256 * kMiB, 4 * kMiB, kPlenty, 64 * kMiB, kPlenty);
  ASSERT_TRUE(sizes.ok()) << sizes.status().ToString();
  EXPECT_EQ(sizes->gpu_budget, 128 * kMiB);
  EXPECT_EQ(sizes->gpu_cache, 128 * kMiB);
  EXPECT_EQ(sizes->dram, 68 * kMiB + 64 * kMiB);  // a quarter plus a block, plus the staging ring
  EXPECT_EQ(sizes->pmem, 68 * kMiB);
  // NVMe holds the rest with two blocks of slack.
  EXPECT_EQ(sizes->nvme, (256 - 68 - 68 + 8) * kMiB);
  EXPECT_GE(sizes->dram - 64 * kMiB + sizes->pmem + sizes->nvme, 256 * kMiB);
}

TEST(TierSizesTest, CopyRoomIsKeptFreeOfHomesOnlyWithDefaultSizes) {
  Result<TierSizes> sizes =
      ChooseTierSizes(Options(), 256 * kMiB, 4 * kMiB, kPlenty, 64 * kMiB, kPlenty, 64 * kMiB);
  ASSERT_TRUE(sizes.ok()) << sizes.status().ToString();
  EXPECT_EQ(sizes->dram, 68 * kMiB + 64 * kMiB + 64 * kMiB);
  EXPECT_EQ(sizes->dram_homes, 68 * kMiB);
  EXPECT_EQ(sizes->nvme, (256 - 68 - 68 + 8) * kMiB);  // the same homes below DRAM
  Options given = With({{&Options::dram_bytes, 132 * kMiB}, {&Options::nvme_bytes, 1 * kGiB}},
                       {"dram_bytes", "nvme_bytes"});
  sizes = ChooseTierSizes(given, 256 * kMiB, 4 * kMiB, kPlenty, 64 * kMiB, kPlenty, 64 * kMiB);
  ASSERT_TRUE(sizes.ok()) << sizes.status().ToString();
  EXPECT_EQ(sizes->dram, 132 * kMiB);
  EXPECT_EQ(sizes->dram_homes, 68 * kMiB) << "a given size is all homes beside the reserve";
}

TEST(TierSizesTest, GivenSizesAreKeptAndUnnamedTiersLeftOut) {
  Options options = With({{&Options::nvme_bytes, 1 * kGiB}, {&Options::gpu_cache_bytes, 32 * kMiB}},
                         {"nvme_bytes", "gpu_cache_bytes"});
  Result<TierSizes> sizes = ChooseTierSizes(options, 256 * kMiB, 4 * kMiB, kPlenty, 0, kPlenty);
  ASSERT_TRUE(sizes.ok()) << sizes.status().ToString();
  EXPECT_EQ(sizes->nvme, 1 * kGiB);
  EXPECT_EQ(sizes->dram, 0u);
  EXPECT_EQ(sizes->pmem, 0u);
  EXPECT_EQ(sizes->gpu_cache, 32 * kMiB);
  EXPECT_EQ(sizes->gpu_budget, 128 * kMiB);
}

TEST(TierSizesTest, ImpossibleSizesAreBadInput) {
  struct Case {
    Options options;
    uint64_t free_disk;
    uint64_t free_memory;
    const char* named;
  };
  std::vector<Case> cases = {
      {With({{&Options::nvme_bytes, 2 * kGiB}}, {"nvme_bytes"}), 1 * kGiB, kPlenty, "free disk space"},
      {Options(), 100 * kMiB, kPlenty, "free disk space"},  // the default PMEM + NVMe files
      {With({{&Options::dram_bytes, 8 * kGiB}}, {"dram_bytes"}), kPlenty, 4 * kGiB, "available memory"},
      {With({{&Options::dram_bytes, 64 * kMiB}, {&Options::nvme_bytes, 64 * kMiB}},
            {"dram_bytes", "nvme_bytes"}),
       kPlenty, kPlenty, "cannot hold"},
      {With({{&Options::gpu_cache_bytes, 1 * kMiB}}, {"gpu_cache_bytes"}), kPlenty, kPlenty,
       "largest block"},
  };
  for (const Case& c : cases) {
    Result<TierSizes> sizes = ChooseTierSizes(c.options, 256 * kMiB, 4 * kMiB, c.free_disk, 0, c.free_memory);
    ASSERT_FALSE(sizes.ok()) << c.named;
    EXPECT_EQ(sizes.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(sizes.status().message().find(c.named), std::string::npos) << sizes.status().message();
  }
}

}  // namespace
}  // namespace tiercache::bench
