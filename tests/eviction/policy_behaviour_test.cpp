// What distinguishes each policy, on sequences small enough to follow by hand.
#include <gtest/gtest.h>

#include <set>

#include "prefetch/eviction/arc_policy.h"
#include "prefetch/eviction/lru_policy.h"
#include "prefetch/eviction/next_use_policy.h"
#include "prefetch/eviction/s3fifo_policy.h"

namespace tiercache {
namespace {

constexpr auto kAny = [](BlockId) { return true; };

// A cache of `capacity` unit-sized blocks driven by a policy.
class UnitCache {
 public:
  UnitCache(EvictionPolicy* policy, size_t capacity) : policy_(policy), capacity_(capacity) {}
  bool Access(BlockId id) {
    policy_->OnTick(now_++);
    if (resident_.count(id)) {
      policy_->OnAccess(id);
      return true;
    }
    if (resident_.size() == capacity_) {
      const BlockId victim = *policy_->ChooseVictim(kAny);
      policy_->OnErase(victim);
      resident_.erase(victim);
    }
    policy_->OnInsert(id, 1);
    resident_.insert(id);
    return false;
  }
  bool Resident(BlockId id) const { return resident_.count(id) > 0; }

 private:
  EvictionPolicy* policy_;
  size_t capacity_;
  uint64_t now_ = 0;
  std::set<BlockId> resident_;
};

TEST(LruPolicy, EvictsTheLeastRecentlyUsed) {
  LruPolicy lru;
  lru.OnInsert(1, 1);
  lru.OnInsert(2, 1);
  lru.OnInsert(3, 1);
  lru.OnAccess(1);  // recency order, oldest first: 2 3 1
  EXPECT_EQ(lru.ChooseVictim(kAny), BlockId{2});
  lru.OnErase(2);
  EXPECT_EQ(lru.ChooseVictim(kAny), BlockId{3});
  lru.OnInsert(3, 1);  // re-insert counts as an access: 1 3
  EXPECT_EQ(lru.ChooseVictim(kAny), BlockId{1});
}

// A hot pair touched twice, then a long one-time scan: ARC and S3-FIFO keep
// the pair, LRU loses it.
template <typename Policy>
bool HotPairSurvivesScan(Policy&& policy) {
  UnitCache cache(&policy, 4);
  for (int round = 0; round < 2; ++round) {
    cache.Access(1);
    cache.Access(2);
  }
  for (BlockId id = 100; id < 200; ++id) cache.Access(id);
  return cache.Resident(1) && cache.Resident(2);
}

TEST(ScanResistance, ArcAndS3FifoKeepAHotSetThatLruLoses) {
  EXPECT_FALSE(HotPairSurvivesScan(LruPolicy()));
  EXPECT_TRUE(HotPairSurvivesScan(ArcPolicy(4)));
  EXPECT_TRUE(HotPairSurvivesScan(S3FifoPolicy(10)));
}

TEST(ArcPolicy, RecencyGhostHitGrowsTheT1Target) {
  ArcPolicy arc(30);
  for (BlockId id = 1; id <= 3; ++id) arc.OnInsert(id, 10);
  EXPECT_EQ(arc.target_t1_bytes(), 0u);
  auto victim = arc.ChooseVictim(kAny);
  ASSERT_EQ(victim, BlockId{1});  // T1's oldest, T1 (30 B) is over p (0 B)
  arc.OnErase(1);
  EXPECT_EQ(arc.ghost_bytes(), 10u);
  arc.OnInsert(1, 10);  // found in B1: p grows by max(1, |B2|/|B1|) * 10 B
  EXPECT_EQ(arc.target_t1_bytes(), 10u);
  EXPECT_EQ(arc.ghost_bytes(), 0u);
}

TEST(ArcPolicy, FreedBlocksLeaveNoGhost) {
  ArcPolicy arc(30);
  arc.OnInsert(1, 10);
  arc.OnErase(1);  // not named by ChooseVictim: the engine freed it
  EXPECT_EQ(arc.ghost_bytes(), 0u);
}

TEST(S3FifoPolicy, OneHitWondersLeaveThroughTheSmallQueueIntoTheGhost) {
  S3FifoPolicy s3(100);  // small queue: 10 B
  s3.OnInsert(1, 10);    // S: 1
  s3.OnInsert(2, 10);    // S: 2 1
  s3.OnAccess(2);
  auto victim = s3.ChooseVictim(kAny);
  ASSERT_EQ(victim, BlockId{1});  // never accessed, oldest in S
  s3.OnErase(1);
  EXPECT_TRUE(s3.InGhost(1));
  victim = s3.ChooseVictim(kAny);  // 2 was accessed: promoted to M, then M's
  ASSERT_EQ(victim, BlockId{2});   // only block has counter 0 and goes
  s3.OnErase(2);
  EXPECT_FALSE(s3.InGhost(2));  // evicted from M: no ghost
  s3.OnInsert(1, 10);            // remembered: straight into M
  EXPECT_FALSE(s3.InGhost(1));
  EXPECT_EQ(s3.main_bytes(), 10u);
  EXPECT_EQ(s3.small_bytes(), 0u);
}

TEST(S3FifoPolicy, MainQueueGivesAccessedBlocksAnotherRound) {
  S3FifoPolicy s3(20);  // small target 2 B: the 10 B blocks all pass through S
  for (BlockId id = 1; id <= 3; ++id) {
    s3.OnInsert(id, 10);
    s3.OnAccess(id);
  }
  // S has 1..3, each accessed: the first ChooseVictim promotes them in order
  // to M, then M's oldest (1) has counter 0 after promotion.
  EXPECT_EQ(s3.ChooseVictim(kAny), BlockId{1});
  s3.OnErase(1);
  s3.OnAccess(2);  // counter 1: survives one pass
  EXPECT_EQ(s3.ChooseVictim(kAny), BlockId{3});
}

TEST(NextUsePolicy, EvictsTheFarthestPredictedUse) {
  NextUsePolicy policy;
  for (BlockId id = 1; id <= 3; ++id) policy.OnInsert(id, 1);
  policy.OnPrediction(1, 10);
  policy.OnPrediction(2, 5);
  policy.OnPrediction(3, 20);
  EXPECT_EQ(policy.ChooseVictim(kAny), BlockId{3});
  EXPECT_EQ(policy.ChooseVictim([](BlockId id) { return id != 3; }), BlockId{1});
  policy.OnInsert(4, 1);  // no prediction: unknown, farther than any
  EXPECT_EQ(policy.ChooseVictim(kAny), BlockId{4});
  EXPECT_EQ(policy.PredictedNextUse(4), kNeverUsedAgain);
  EXPECT_EQ(policy.PredictedNextUse(9), std::nullopt);
}

TEST(NextUsePolicy, UnknownBlocksFallBackToLru) {
  NextUsePolicy policy;
  for (BlockId id = 1; id <= 3; ++id) policy.OnInsert(id, 1);
  policy.OnAccess(1);
  EXPECT_EQ(policy.ChooseVictim(kAny), BlockId{2});
  policy.OnPrediction(2, 7);
  EXPECT_EQ(policy.ChooseVictim(kAny), BlockId{3});
}

TEST(NextUsePolicy, AnAccessConsumesThePrediction) {
  NextUsePolicy policy;
  policy.OnInsert(1, 1);
  policy.OnInsert(2, 1);
  policy.OnPrediction(1, 3);
  policy.OnPrediction(2, 100);
  policy.OnTick(3);
  policy.OnAccess(1);
  EXPECT_EQ(policy.PredictedNextUse(1), kNeverUsedAgain);
  EXPECT_EQ(policy.ChooseVictim(kAny), BlockId{1});
}

TEST(NextUsePolicy, OverduePredictionsAreReAskedOrForgotten) {
  NextUsePolicy policy;
  policy.OnInsert(1, 1);
  policy.OnInsert(2, 1);
  policy.OnPrediction(1, 5);
  policy.OnPrediction(2, 50);
  policy.OnTick(6);  // 1 was due at 5 and did not come: unknown, so farthest
  EXPECT_EQ(policy.ChooseVictim(kAny), BlockId{1});

  NextUsePolicy with_source;
  int asked = 0;
  with_source.SetNextUseSource([&](BlockId id) {
    ++asked;
    return id == 1 ? uint64_t{8} : kNeverUsedAgain;
  });
  with_source.OnInsert(1, 1);
  with_source.OnInsert(2, 1);
  with_source.OnPrediction(1, 5);
  with_source.OnPrediction(2, 50);
  with_source.OnTick(6);
  EXPECT_EQ(with_source.ChooseVictim(kAny), BlockId{2});
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(with_source.PredictedNextUse(1), 8u);
}

}  // namespace
}  // namespace tiercache
