#include "tiers/memory_tier.h"

#include "tests/tiers/tier_conformance.h"

namespace tiercache::testing {
namespace {

struct MemoryTierFactory {
  static std::unique_ptr<Tier> Make(uint64_t capacity) {
    auto tier = MemoryTier::Create("memory", capacity);
    return tier.ok() ? std::move(tier).value() : nullptr;
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, TierConformance, ::testing::Types<MemoryTierFactory>);

TEST(MemoryTier, RejectsBadConstruction) {
  EXPECT_EQ(ErrorCode::kInvalidArgument, MemoryTier::Create("m", 0).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, MemoryTier::Create("m", 4096, 3).status().code());
}

TEST(MemoryTier, HostAddressPointsAtTheExtentsBytes) {
  auto tier = MemoryTier::Create("m", 1 * kMiB);
  ASSERT_TRUE(tier.ok());
  Result<Extent> e = (*tier)->Allocate(100);
  ASSERT_TRUE(e.ok());
  const char text[] = "hello";
  ASSERT_TRUE((*tier)->Write(*e, 10, text, sizeof(text)).ok());
  auto* p = static_cast<const char*>((*tier)->HostAddress(*e));
  ASSERT_NE(nullptr, p);
  EXPECT_STREQ(text, p + 10);
  EXPECT_EQ(nullptr, (*tier)->HostAddress(Extent{e->offset + 64, 1}));
}

}  // namespace
}  // namespace tiercache::testing
