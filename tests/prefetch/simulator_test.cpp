// The simulator's claims on small traces: on a dense cyclic trace the
// learned next-use policy reaches >= 99% of MIN at 10-90% of the working
// set while LRU gets nothing; on a skewed, correlated MoE trace it stays
// within 95% of MIN and ahead of LRU, ARC and S3-FIFO at every size;
// prefetching on the cyclic trace is accurate.
#include <gtest/gtest.h>

#include "common/units.h"
#include "prefetch/simulator.h"
#include "prefetch/trace_generators.h"

namespace tiercache {
namespace {

const std::vector<double> kFractions = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};

std::vector<SimResult> Sweep(const Trace& t, const std::vector<std::string>& policies) {
  auto r = SimulateSweep(t, policies, kFractions, SimOptions{});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<SimResult>{};
}

TEST(Simulator, DenseCyclicNextUseReachesMinWhileLruGetsNothing) {
  // 16 layers of 2 blocks (3 and 5 MiB), 400 decode steps.
  const Trace t = GenerateTrace("dense:layers=16,blocks=2,sizes=3MiB/5MiB,steps=400").value();
  const std::vector<std::string> policies = {"lru", "next-use", "min"};
  const auto r = Sweep(t, policies);
  ASSERT_EQ(r.size(), kFractions.size() * 3);
  for (size_t f = 0; f < kFractions.size(); ++f) {
    const SimResult &lru = r[3 * f], &next_use = r[3 * f + 1], &min = r[3 * f + 2];
    EXPECT_LT(lru.hit_ratio(), 0.01) << kFractions[f];
    EXPECT_GE(next_use.hit_ratio(), 0.99 * min.hit_ratio()) << kFractions[f];
    EXPECT_LE(next_use.hits, min.hits) << "nothing beats MIN at " << kFractions[f];
  }
  EXPECT_GT(r[3 * 4 + 2].hit_ratio(), 0.4);  // at 50% MIN keeps a real share
}

TEST(Simulator, UnitSizedCyclicNextUseIsExactlyMinAfterLearning) {
  const Trace t = GenerateTrace("dense:layers=10,steps=50").value();
  SimOptions o;
  o.unit_sizes = true;
  o.capacity_bytes = 6;
  o.policy = "min";
  const SimResult min = Simulate(t, o).value();
  o.policy = "next-use";
  const SimResult learned = Simulate(t, o).value();
  // Belady on a loop of 10 with 6 frames hits 5 of every 10 reads after
  // warm-up; the learned policy loses at most the first two rounds.
  EXPECT_NEAR(min.hit_ratio(), 0.5, 0.05);
  EXPECT_LE(min.hits - learned.hits, 20u);
}

TEST(Simulator, MoeNextUseBeatsTheBaselinesAndStaysCloseToMin) {
  // 8 layers x 32 experts, top-2, 1200 tokens (28,800 reads), fixed seed.
  const Trace t = GenerateTrace("moe:layers=8,experts=32,topk=2,zipf=1.1,corr=0.7,tokens=1200,seed=1").value();
  const std::vector<std::string> policies = {"next-use", "min", "lru", "arc", "s3fifo"};
  const auto r = Sweep(t, policies);
  ASSERT_EQ(r.size(), kFractions.size() * policies.size());
  for (size_t f = 0; f < kFractions.size(); ++f) {
    const SimResult* row = &r[policies.size() * f];
    const double next_use = row[0].hit_ratio(), min = row[1].hit_ratio();
    // Measured (deterministic): 0.958 of MIN at 10% of the working set,
    // 0.975 at 20%, 0.997 at 90%; ahead of the best baseline by 0.0093 at
    // 10%, 0.0050 at 50% and 0.0004 at 90% (where every policy is close to
    // the compulsory misses).
    EXPECT_GE(next_use, 0.95 * min) << kFractions[f];
    for (size_t p = 2; p < policies.size(); ++p) {
      EXPECT_GT(next_use, row[p].hit_ratio()) << policies[p] << " at " << kFractions[f];
    }
  }
}

TEST(Simulator, PrefetchingTheCycleIsAccurateAndCoversTheMisses) {
  const Trace t = GenerateTrace("dense:layers=16,steps=200,bytes=1MiB").value();
  SimOptions o;
  o.policy = "next-use+prefetch";
  o.capacity_bytes = 4 * kMiB + 1;  // a quarter of the model
  o.prefetch_depth = 2;
  const SimResult r = Simulate(t, o).value();
  EXPECT_GT(r.prefetch_accuracy(), 0.95);
  EXPECT_GT(r.prefetch_coverage(), 0.95);
  EXPECT_GT(r.hit_ratio(), 0.95);
  EXPECT_LT(r.prefetch_wasted, r.prefetches / 20);
  o.policy = "min";
  EXPECT_LT(Simulate(t, o).value().hit_ratio(), 0.3);  // demand MIN cannot do that
}

TEST(Simulator, WritesTakeSpaceAndFreesReleaseIt) {
  Trace t;
  t.records = {{0, 1, 6, TraceOp::kWrite, 0}, {0, 2, 6, TraceOp::kRead, 0},
               {0, 1, 6, TraceOp::kRead, 0},  {0, 1, 0, TraceOp::kFree, 0},
               {0, 3, 6, TraceOp::kRead, 0},  {0, 2, 6, TraceOp::kRead, 0}};
  SimOptions o;
  o.policy = "lru";
  o.capacity_bytes = 12;
  // write 1 [1]; read 2 m [1 2]; read 1 h; free 1 [2]; read 3 m [2 3]; read 2 h
  const SimResult r = Simulate(t, o).value();
  EXPECT_EQ(r.writes, 1u);
  EXPECT_EQ(r.reads, 4u);
  EXPECT_EQ(r.hits, 2u);
  EXPECT_EQ(r.evictions, 0u);
}

TEST(Simulator, RejectsBadOptionsAndReportsJson) {
  const Trace t = GenerateTrace("dense:layers=2,steps=2").value();
  SimOptions o;
  o.capacity_bytes = 1;
  o.policy = "fifo";
  EXPECT_EQ(Simulate(t, o).status().code(), ErrorCode::kInvalidArgument);
  o.policy = "lru";
  o.capacity_bytes = 0;
  EXPECT_EQ(Simulate(t, o).status().code(), ErrorCode::kInvalidArgument);
  o.capacity_bytes = 1;
  EXPECT_EQ(Simulate(Trace{}, o).status().code(), ErrorCode::kInvalidArgument);
  const SimResult r = Simulate(t, o).value();  // every block is bigger than the cache
  EXPECT_EQ(r.bypasses, 4u);
  EXPECT_EQ(r.misses, 4u);
  const std::string json = r.ToJson();
  EXPECT_EQ(json.front(), '{');
  EXPECT_NE(json.find("\"policy\":\"lru\""), std::string::npos);
  EXPECT_NE(json.find("\"misses\":4"), std::string::npos);
  EXPECT_NE(json.find("\"hit_ratio\":0.000000"), std::string::npos);
  EXPECT_FALSE(SimulateSweep(t, {"lru"}, {0.0}, SimOptions{}).ok());
}

}  // namespace
}  // namespace tiercache
