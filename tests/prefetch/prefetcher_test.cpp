// The detectors learn what they claim to, hints and schedules override
// them, and the accounting counts what happened.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <set>

#include "prefetch/cycle_detector.h"
#include "prefetch/markov_detector.h"
#include "prefetch/prefetcher.h"
#include "prefetch/reuse_detector.h"
#include "prefetch/stride_detector.h"

namespace tiercache {
namespace {

template <typename Detector>
void Feed(Detector& d, const std::vector<BlockId>& ids, uint64_t* now) {
  for (BlockId id : ids) d.Observe(id, 1, (*now)++);
}

std::vector<BlockId> Next(const PatternDetector& d, size_t n) {
  std::vector<BlockId> out;
  d.PredictNext(n, &out);
  return out;
}

TEST(CycleDetector, LearnsALayerCycle) {
  CycleDetector cycle;
  uint64_t now = 0;
  std::vector<BlockId> order = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  for (int round = 0; round < 5; ++round) Feed(cycle, order, &now);
  EXPECT_EQ(cycle.period(), 10u);
  Feed(cycle, {10, 11, 12, 13, 14}, &now);
  EXPECT_EQ(Next(cycle, 3), (std::vector<BlockId>{15, 16, 17}));
  // From 14: 15 16 17 18 19 10 11 12 -> 12 is 8 accesses away.
  EXPECT_EQ(cycle.PredictDistance(12, now - 1), 8u);
  EXPECT_EQ(cycle.PredictDistance(99, now - 1), kNeverUsedAgain);
}

TEST(CycleDetector, APeriodOfAtLeastTheMinimumWindowIsAdoptedAfterOneRepeat) {
  CycleDetector cycle;
  uint64_t now = 0;
  std::vector<BlockId> order;
  for (BlockId id = 0; id < 16; ++id) order.push_back(100 + id);
  Feed(cycle, order, &now);
  EXPECT_EQ(cycle.period(), 0u);
  Feed(cycle, std::vector<BlockId>(order.begin(), order.end() - 1), &now);
  EXPECT_EQ(cycle.period(), 0u) << "not before the whole period has repeated";
  Feed(cycle, {order.back()}, &now);
  EXPECT_EQ(cycle.period(), 16u);
  EXPECT_DOUBLE_EQ(cycle.match_rate(), 1.0);
  std::vector<BlockId> last;
  cycle.LastPeriod(&last);
  EXPECT_EQ(last, order);
  // A short period still needs the longer window: chance repeats are likely.
  CycleDetector short_cycle;
  now = 0;
  for (int round = 0; round < 4; ++round) Feed(short_cycle, {1, 2, 3}, &now);
  EXPECT_EQ(short_cycle.period(), 0u);
}

// Rounds of 16 accesses (a token's pass): fixed blocks, a slot choosing 1
// (60% of rounds), 2 (30%) or 3 (10%), a slot alternating between 11 and
// 12. After a round that chose 2 and 11: of the blocks the next four
// accesses may use, the candidates are the likely ones the caller wants,
// each once.
void FeedRounds(const std::function<void(BlockId)>& observe, int rounds) {
  const BlockId pick[10] = {1, 2, 1, 3, 1, 2, 1, 1, 2, 1};
  for (int r = 0; r < rounds; ++r) {
    for (BlockId id : {BlockId{100}, pick[r % 10], BlockId{200}, BlockId(r % 2 ? 12 : 11)}) observe(id);
    for (BlockId filler = 300; filler < 312; ++filler) observe(filler);
  }
}

TEST(ReuseDetector, CandidatesAreTheLikelyBlocksOfTheComingRoundsThatAreWanted) {
  ReuseDetector reuse;
  uint64_t now = 0;
  FeedRounds([&](BlockId id) { reuse.Observe(id, 1, now++); }, 199);  // the last chose 2 and 11
  ASSERT_EQ(reuse.round(), 16u);
  auto candidates = [&](uint64_t horizon, const std::function<bool(BlockId)>& wanted) {
    std::vector<std::pair<uint64_t, BlockId>> out;
    reuse.Candidates(horizon, 0.35, 16, wanted, &out);
    return out;
  };
  auto ids = [](const std::vector<std::pair<uint64_t, BlockId>>& c) {
    std::vector<BlockId> v;
    for (const auto& [wait, id] : c) v.push_back(id);
    return v;
  };
  const auto all = candidates(4, [](BlockId) { return true; });
  for (const auto& [wait, id] : all) EXPECT_LE(wait, 4u) << id;
  const std::vector<BlockId> listed = ids(all);
  auto has = [&](BlockId id) { return std::find(listed.begin(), listed.end(), id) != listed.end(); };
  // 12, idle a round and alternating, comes next; 11, never used two
  // rounds running, does not. 1 (idle a round) is likely; 2 rarely repeats
  // and 3 is rare. The fillers' slots lie beyond the horizon.
  EXPECT_TRUE(has(100) && has(200) && has(12) && has(1));
  EXPECT_FALSE(has(11) || has(2) || has(3) || has(300));
  EXPECT_EQ(std::set<BlockId>(listed.begin(), listed.end()).size(), listed.size()) << "each once";
  // What the caller holds is not named.
  const auto absent = ids(candidates(4, [](BlockId id) { return id != 100 && id != 200; }));
  EXPECT_EQ(absent.size(), listed.size() - 2);
  EXPECT_TRUE(candidates(0, [](BlockId) { return true; }).empty());
}

// The prefetcher adds those candidates after what PredictNext names, only
// while no repeating order is known.
TEST(Prefetcher, AppendsLikelyAbsentBlocksOnlyForADataDependentOrder) {
  Prefetcher p;
  uint64_t t = 0;
  // Random routing, so no period repeats 90% of accesses: rounds of
  // 100, {1: 60%, 2: 30%, 3: 10%}, 200, {11, 12: half each}.
  std::mt19937 rng(12345);  // its raw output is the same everywhere
  auto draw = [&] { return rng() % 10; };
  for (int r = 0; r < 400; ++r) {
    const uint64_t x = draw(), y = draw();
    const BlockId pick = x < 6 ? 1 : x < 9 ? 2 : 3;
    for (BlockId id : {BlockId{100}, pick, BlockId{200}, BlockId(y < 5 ? 11 : 12)}) p.OnAccess(id, 1, ++t);
  }
  ASSERT_TRUE(p.RepeatingOrder().empty());
  std::vector<BlockId> list = {100};
  p.AppendCandidates(4, 8, [](BlockId id) { return id != 200; }, &list);
  auto count = [&](BlockId id) { return std::count(list.begin(), list.end(), id); };
  EXPECT_EQ(list.front(), 100u);
  EXPECT_EQ(count(100), 1) << "not named twice";
  EXPECT_EQ(count(200), 0) << "not wanted";
  EXPECT_EQ(count(1), 1);
  EXPECT_GE(count(11) + count(12), 1);
  EXPECT_EQ(count(3), 0) << "too unlikely";
  // A fixed cycle: PredictNext already names everything to come.
  Prefetcher cyclic;
  for (int r = 0; r < 4; ++r) {
    for (BlockId id = 0; id < 12; ++id) cyclic.OnAccess(id, 1, ++t);
  }
  std::vector<BlockId> none;
  cyclic.AppendCandidates(12, 8, [](BlockId) { return true; }, &none);
  EXPECT_TRUE(none.empty());
}

TEST(Prefetcher, RepeatingOrderIsTheCycleOnceLearnedOrTheSchedule) {
  Prefetcher p;
  std::vector<BlockId> order = {7, 3, 9, 1, 4, 8, 2, 6, 5, 0};
  uint64_t t = 0;
  for (BlockId id : order) p.OnAccess(id, 1, ++t);
  EXPECT_TRUE(p.RepeatingOrder().empty());
  for (int round = 0; round < 2; ++round) {
    for (BlockId id : order) p.OnAccess(id, 1, ++t);
  }
  EXPECT_EQ(p.RepeatingOrder(), order);
  // Random accesses drop it.
  for (BlockId id : {3, 3, 8, 1, 1, 9, 0, 0, 5, 2, 2, 7, 7, 4, 6, 6, 3, 9, 9, 1}) p.OnAccess(id, 1, ++t);
  EXPECT_TRUE(p.RepeatingOrder().empty());
  // A recorded schedule is a repeating order from the start.
  Prefetcher scheduled;
  scheduled.SetSchedule({5, 6, 7});
  EXPECT_EQ(scheduled.RepeatingOrder(), (std::vector<BlockId>{5, 6, 7}));
  // Without learning only the schedule counts.
  Prefetcher hints_only(PrefetcherOptions{.learn = false});
  for (int round = 0; round < 3; ++round) {
    for (BlockId id : order) hints_only.OnAccess(id, 1, ++t);
  }
  EXPECT_TRUE(hints_only.RepeatingOrder().empty());
}

TEST(CycleDetector, LearnsForwardThenReverse) {
  CycleDetector cycle;
  uint64_t now = 0;
  std::vector<BlockId> step;
  for (BlockId l = 0; l < 8; ++l) step.push_back(l);
  for (BlockId l = 8; l-- > 0;) step.push_back(l);  // 0..7 7..0: period 16
  for (int round = 0; round < 5; ++round) Feed(cycle, step, &now);
  EXPECT_EQ(cycle.period(), 16u);
  Feed(cycle, {0, 1, 2, 3, 4}, &now);
  // After forward layer 4: 5 6 7 | 7 6 5 4 3 2 -> layer 2 in 9 accesses.
  EXPECT_EQ(cycle.PredictDistance(2, now - 1), 9u);
  EXPECT_EQ(cycle.PredictDistance(6, now - 1), 2u);
  EXPECT_EQ(Next(cycle, 5), (std::vector<BlockId>{5, 6, 7, 7, 6}));
}

TEST(CycleDetector, KeepsTheCycleThroughFreshIds) {
  CycleDetector cycle;
  uint64_t now = 0;
  BlockId fresh = 1000;
  for (int round = 0; round < 6; ++round) {
    for (BlockId l = 0; l < 6; ++l) Feed(cycle, {l, fresh++}, &now);  // weights + new activations
  }
  EXPECT_EQ(cycle.period(), 12u);
  EXPECT_EQ(cycle.PredictDistance(0, now - 1), 1u);
}

TEST(CycleDetector, MemoryIsBoundedByTheHistory) {
  CycleDetector cycle;
  uint64_t now = 0;
  // Far more distinct ids than the history holds (fresh activations).
  for (BlockId fresh = 1 << 20; fresh < (1 << 20) + 3 * CycleDetector::kMaxTrackedIds; ++fresh) {
    cycle.Observe(fresh, 1, now++);
  }
  EXPECT_LE(cycle.tracked_ids(), CycleDetector::kMaxTrackedIds);
  EXPECT_EQ(cycle.PredictDistance(1 << 20, now - 1), kNeverUsedAgain);
  // It still learns a cycle afterwards, and an id seen in it is tracked.
  std::vector<BlockId> order;
  for (BlockId l = 0; l < 16; ++l) order.push_back(l);
  for (int round = 0; round < 5; ++round) Feed(cycle, order, &now);
  EXPECT_EQ(cycle.period(), 16u);
  EXPECT_EQ(cycle.PredictDistance(3, now - 1), 4u);
  EXPECT_LE(cycle.tracked_ids(), CycleDetector::kMaxTrackedIds);
}

TEST(StrideDetector, PredictsAlongTheStrideInEitherDirection) {
  StrideDetector stride;
  uint64_t now = 0;
  Feed(stride, {100, 103, 106, 109}, &now);
  EXPECT_EQ(stride.stride(), 3);
  EXPECT_EQ(Next(stride, 2), (std::vector<BlockId>{112, 115}));
  EXPECT_EQ(stride.PredictDistance(118, now - 1), 3u);
  EXPECT_EQ(stride.PredictDistance(110, now - 1), kNeverUsedAgain);
  Feed(stride, {50, 40, 30, 20}, &now);
  EXPECT_EQ(stride.stride(), -10);
  EXPECT_EQ(Next(stride, 1), (std::vector<BlockId>{10}));
  Feed(stride, {7}, &now);
  EXPECT_EQ(stride.stride(), 0);
}

TEST(MarkovDetector, LearnsWhichBlocksFollowWhich) {
  MarkovDetector markov;
  uint64_t now = 0;
  // After 1: 2 four times out of five, 3 once; after 2 always 4.
  for (int i = 0; i < 4; ++i) Feed(markov, {1, 2, 4}, &now);
  Feed(markov, {1, 3, 4}, &now);
  EXPECT_DOUBLE_EQ(markov.TransitionProbability(1, 2), 0.8);
  EXPECT_DOUBLE_EQ(markov.TransitionProbability(1, 3), 0.2);
  Feed(markov, {1}, &now);
  const auto next = Next(markov, 3);
  ASSERT_GE(next.size(), 2u);
  EXPECT_EQ(next[0], 2u);  // most likely first
  EXPECT_EQ(next[1], 3u);
  EXPECT_EQ(markov.PredictDistance(2, now - 1), 1u);
}

// A fixed cycle is a chain with one successor per block: asked for more
// blocks than it holds, the expansion must end (it once looped forever)
// and list each block of the cycle once.
TEST(MarkovDetector, AskingForMoreThanACycleHoldsReturnsTheCycleOnce) {
  MarkovDetector markov;
  uint64_t now = 0;
  for (int round = 0; round < 3; ++round) Feed(markov, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, &now);
  const auto next = Next(markov, 16);  // the cycle has 12 blocks
  ASSERT_EQ(next.size(), 12u);
  EXPECT_EQ(next.front(), 0u);  // after 11 comes 0
  std::vector<BlockId> sorted = next;
  std::sort(sorted.begin(), sorted.end());
  for (BlockId id = 0; id < 12; ++id) EXPECT_EQ(sorted[id], id);
}

// Rounds of 10 accesses: blocks 0..8 every round (sticky), then one of
// 200..204 in turn (each back every 5th round: cold between uses).
void FeedRounds(ReuseDetector& reuse, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    for (BlockId j = 0; j < 9; ++j) reuse.Observe(j, 1, 10 * r + j);
    reuse.Observe(200 + r % 5, 1, 10 * r + 9);
  }
}

TEST(ReuseDetector, LearnsTheRoundStickinessAndRate) {
  ReuseDetector reuse;
  FeedRounds(reuse, 100);  // last access: 204 at 999
  EXPECT_EQ(reuse.round(), 10u);
  EXPECT_GT(reuse.Stickiness(3), 0.95);
  EXPECT_LT(reuse.Stickiness(200), 0.1);
  // After a first missed round, 200 comes back one round in four.
  EXPECT_GT(reuse.Rate(200, 0), 0.15);
  EXPECT_LT(reuse.Rate(200, 0), 0.35);
  // Block 3 was used at 993; its slot comes round at 1003: 4 accesses on,
  // almost surely (4 / h, h > 0.99).
  EXPECT_EQ(reuse.PredictDistance(3, 999), 4u);
  // A cold block is farther than a round away; a sticky block that misses
  // its round turns cold.
  EXPECT_GT(reuse.PredictDistance(200, 999), 10u);
  EXPECT_GT(reuse.PredictDistance(3, 1020), 20u);
  EXPECT_EQ(Next(reuse, 3), (std::vector<BlockId>{0, 1, 2}));  // 203 is due but not sticky
}

TEST(ReuseDetector, ABlockSeenOnceGetsThePooledEstimate) {
  ReuseDetector reuse;
  FeedRounds(reuse, 100);
  reuse.Observe(500, 1, 1000);
  const uint64_t once = reuse.PredictDistance(500, 1000);
  // About a round over the pooled stickiness (~0.9): neither unknown nor
  // ranked with the blocks that are never back.
  EXPECT_GE(once, 10u);
  EXPECT_LT(once, 20u);
  EXPECT_LT(once, reuse.PredictDistance(200, 1000));
  EXPECT_EQ(reuse.PredictDistance(501, 1000), kNeverUsedAgain);
}

TEST(ReuseDetector, MemoryIsCappedAndTheIdlestBlocksGoFirst) {
  ReuseDetector reuse;
  uint64_t now = 0;
  for (BlockId fresh = 1000; fresh < 1000 + ReuseDetector::kMaxBlocks + 500; ++fresh) {
    if (fresh % 100 == 0) reuse.Observe(7, 1, now++);  // one block keeps coming back
    reuse.Observe(fresh, 1, now++);
  }
  EXPECT_EQ(reuse.tracked_blocks(), ReuseDetector::kMaxBlocks);
  EXPECT_EQ(reuse.PredictDistance(1000, now), kNeverUsedAgain);  // the first fresh id: forgotten
  EXPECT_NE(reuse.PredictDistance(7, now), kNeverUsedAgain);
  EXPECT_EQ(reuse.round(), 101u);
}

TEST(Prefetcher, LearnsACycleWithoutHints) {
  Prefetcher p;
  for (int round = 0; round < 6; ++round) {
    for (BlockId l = 0; l < 12; ++l) p.OnAccess(l, 100, 1000 * (round * 12 + l));
  }
  EXPECT_EQ(p.PredictNext(3), (std::vector<BlockId>{0, 1, 2}));
  EXPECT_EQ(p.PredictDistance(5), 6u);
  EXPECT_EQ(p.PredictNextUseTick(5), p.ticks() - 1 + 6);
  EXPECT_GT(p.Confidence("cycle"), 0.5);
  EXPECT_GT(p.stats().top1_accuracy(), 0.7);
  EXPECT_EQ(p.compute_ns(), 1000u);
  EXPECT_EQ(p.Confidence("nonsense"), -1);
}

TEST(Prefetcher, HintsOverrideLearningUntilConsumedOrContradicted) {
  Prefetcher p;
  for (int round = 0; round < 4; ++round) {
    for (BlockId l = 0; l < 5; ++l) p.OnAccess(l, 1, 0);
  }
  p.Hint({42, 43, 44});
  EXPECT_EQ(p.PredictNext(2), (std::vector<BlockId>{42, 43}));
  EXPECT_EQ(p.PredictDistance(44), 3u);
  p.OnAccess(42, 1, 0);
  EXPECT_EQ(p.PredictNext(1), (std::vector<BlockId>{43}));
  p.OnAccess(7, 1, 0);  // not hinted: the hints are dropped
  EXPECT_EQ(p.PredictDistance(44), kNeverUsedAgain);
}

TEST(Prefetcher, ARecordedScheduleDrivesPredictions) {
  Prefetcher p;
  p.SetSchedule({10, 20, 30, 40});
  p.OnAccess(20, 1, 0);
  EXPECT_EQ(p.PredictNext(3), (std::vector<BlockId>{30, 40, 10}));
  EXPECT_EQ(p.PredictDistance(10), 3u);
  p.OnAccess(999, 1, 0);  // outside the schedule: ignored
  p.OnAccess(30, 1, 0);
  EXPECT_EQ(p.PredictDistance(40), 1u);
  EXPECT_EQ(p.PredictDistance(20), 3u);
}

TEST(Prefetcher, CountsUsefulLateAndWastedPrefetchesAndMeasuresTheLink) {
  PrefetcherOptions options;
  options.waste_horizon = 10;
  Prefetcher p(options);
  p.OnPrefetchIssued(1, 1000, 0);
  p.OnPrefetchArrived(1, 100);  // 1000 B in 100 ns = 10 GB/s
  EXPECT_LT(p.link_bytes_per_s(), options.initial_link_bytes_per_s);
  p.OnPrefetchIssued(2, 500, 100);
  p.OnPrefetchIssued(3, 700, 100);
  p.OnAccess(1, 1000, 200);  // arrived at 100: on time
  p.OnAccess(2, 500, 300);   // never arrived: late
  for (BlockId id = 10; id < 25; ++id) p.OnAccess(id, 1, 400 + id);  // 3 never read
  const PrefetchStats& s = p.stats();
  EXPECT_EQ(s.issued, 3u);
  EXPECT_EQ(s.useful, 2u);
  EXPECT_EQ(s.late, 1u);
  EXPECT_EQ(s.wasted, 1u);
  EXPECT_EQ(s.wasted_bytes, 700u);
  EXPECT_DOUBLE_EQ(s.accuracy(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.lateness(), 0.5);
}

TEST(Prefetcher, LookaheadUsesWhatItMeasured) {
  PrefetcherOptions options;
  options.initial_link_bytes_per_s = 1e9;  // 1 GB/s: a 1 MB block takes 1 ms
  Prefetcher p(options);
  for (int i = 0; i < 50; ++i) p.OnAccess(i % 5, 1'000'000, 250'000ull * i);  // 0.25 ms apart
  EXPECT_EQ(p.Lookahead(100'000'000, 0), 5u);  // 4 intervals + 1
  EXPECT_EQ(p.Lookahead(2'500'000, 0), 2u);    // the budget holds two
  // A link the caller measured overrides the estimate: 4 GB/s moves a
  // block in one interval.
  EXPECT_EQ(p.Lookahead(100'000'000, 4e9), 2u);
}

TEST(Prefetcher, WithoutLearningOnlyHintsPredict) {
  PrefetcherOptions options;
  options.learn = false;
  Prefetcher p(options);
  for (int i = 0; i < 64; ++i) p.OnAccess(i % 8, 1, 100ull * i);
  EXPECT_TRUE(p.PredictNext(4).empty());
  EXPECT_EQ(p.PredictDistance(3), kNeverUsedAgain);
  p.Hint({5, 6, 7});
  EXPECT_EQ(p.PredictNext(4), (std::vector<BlockId>{5, 6, 7}));
  EXPECT_EQ(p.PredictDistance(6), 2u);
}

}  // namespace
}  // namespace tiercache
