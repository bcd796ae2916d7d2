// The contract every EvictionPolicy keeps, checked on all of them: victims
// are resident and evictable, pinned blocks are never chosen, misuse throws,
// and a long random workload never breaks these.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>

#include "common/check.h"
#include "prefetch/eviction/eviction_policy.h"

namespace tiercache {
namespace {

TEST(MakeEvictionPolicy, KnowsEveryPolicyByName) {
  for (std::string name : {"lru", "arc", "s3fifo", "next-use"}) {
    auto policy = MakeEvictionPolicy(name, 1000);
    ASSERT_TRUE(policy.ok()) << name << ": " << policy.status().ToString();
    EXPECT_EQ((*policy)->name(), name);
  }
}

TEST(MakeEvictionPolicy, RejectsUnknownNamesAndZeroCapacity) {
  auto unknown = MakeEvictionPolicy("mru", 1000);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("mru"), std::string::npos);
  auto zero = MakeEvictionPolicy("arc", 0);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(MakeEvictionPolicy("s3fifo", 0).ok());
}

class PolicyContract : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<EvictionPolicy> Make(uint64_t capacity = 100) {
    auto policy = MakeEvictionPolicy(GetParam(), capacity);
    TC_CHECK(policy.ok(), "policy");
    return std::move(policy).value();
  }
};

TEST_P(PolicyContract, EmptyPolicyHasNoVictim) {
  auto policy = Make();
  EXPECT_FALSE(policy->ChooseVictim([](BlockId) { return true; }).has_value());
}

TEST_P(PolicyContract, NeverChoosesAPinnedBlock) {
  auto policy = Make();
  for (BlockId id = 0; id < 10; ++id) policy->OnInsert(id, 10);
  for (BlockId id = 0; id < 10; ++id) policy->OnAccess(id);
  std::set<BlockId> pinned = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  auto victim = policy->ChooseVictim([&](BlockId id) { return !pinned.count(id); });
  ASSERT_TRUE(victim.has_value());
  EXPECT_EQ(*victim, 9u);
  pinned.insert(9);
  EXPECT_FALSE(policy->ChooseVictim([&](BlockId id) { return !pinned.count(id); }).has_value());
}

TEST_P(PolicyContract, AccessOfANonResidentBlockIsMisuse) {
  auto policy = Make();
  policy->OnInsert(1, 10);
  EXPECT_THROW(policy->OnAccess(2), LogicError);
  policy->OnErase(1);
  EXPECT_THROW(policy->OnAccess(1), LogicError);
  policy->OnErase(77);  // unknown ids are ignored
  EXPECT_FALSE(policy->ChooseVictim([](BlockId) { return true; }).has_value());
}

TEST_P(PolicyContract, ErasedBlocksAreNeverVictims) {
  auto policy = Make();
  for (BlockId id = 0; id < 5; ++id) policy->OnInsert(id, 10);
  for (BlockId id = 0; id < 4; ++id) policy->OnErase(id);
  auto victim = policy->ChooseVictim([](BlockId) { return true; });
  ASSERT_TRUE(victim.has_value());
  EXPECT_EQ(*victim, 4u);
}

// A random workload through a small cache: every victim must be resident and
// evictable, and the cache must always find room when something is unpinned.
TEST_P(PolicyContract, RandomWorkloadKeepsTheContract) {
  constexpr uint64_t kCapacity = 400;
  auto policy = Make(kCapacity);
  std::mt19937_64 rng(42);
  std::set<BlockId> resident, pinned;
  std::vector<uint64_t> size_of(64);
  for (auto& s : size_of) s = 10 + rng() % 40;
  uint64_t used = 0;
  for (int step = 0; step < 20000; ++step) {
    policy->OnTick(step);
    const BlockId id = rng() % 64;
    const int action = static_cast<int>(rng() % 10);
    if (action == 0 && resident.count(id)) {  // the engine frees it
      policy->OnErase(id);
      resident.erase(id);
      pinned.erase(id);
      used -= size_of[id];
      continue;
    }
    if (action == 1) {  // pin or unpin
      if (pinned.count(id)) pinned.erase(id); else if (resident.count(id)) pinned.insert(id);
      continue;
    }
    if (action == 2 && resident.count(id)) {
      policy->OnPrediction(id, step + rng() % 100);
    }
    if (resident.count(id)) {
      policy->OnAccess(id);
      continue;
    }
    bool room = true;
    while (used + size_of[id] > kCapacity) {
      auto victim = policy->ChooseVictim([&](BlockId v) { return !pinned.count(v); });
      if (!victim) {
        room = false;
        break;
      }
      ASSERT_TRUE(resident.count(*victim)) << "victim " << *victim << " is not resident";
      ASSERT_FALSE(pinned.count(*victim)) << "victim " << *victim << " is pinned";
      policy->OnErase(*victim);
      resident.erase(*victim);
      used -= size_of[*victim];
    }
    if (!room) {
      ASSERT_EQ(pinned.size(), resident.size()) << "no victim while unpinned blocks remain";
      pinned.clear();
      continue;
    }
    policy->OnInsert(id, size_of[id]);
    resident.insert(id);
    used += size_of[id];
  }
}

INSTANTIATE_TEST_SUITE_P(AllPolicies, PolicyContract,
                         ::testing::Values("lru", "arc", "s3fifo", "next-use"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace tiercache
