// The runtime's next-use policy (AdaptivePolicy) where nothing, or not
// much, can be learned: on independent Zipf picks, scans mixed with random
// reads and MoE routing (synthetic and Mixtral-like), its hit ratio is
// never more than 0.01 below the best of LRU, ARC and S3-FIFO at any cache
// size from 10% to 90% of the working set; on a cyclic scan it is MIN.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "prefetch/eviction/adaptive_policy.h"
#include "prefetch/simulator.h"
#include "prefetch/trace_generators.h"

namespace tiercache {
namespace {

class NeverBelowTheBestClassicPolicy : public ::testing::TestWithParam<const char*> {};

TEST_P(NeverBelowTheBestClassicPolicy, AtEveryCacheSize) {
  auto trace = GenerateTrace(GetParam());
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  const std::vector<std::string> policies = {"lru", "arc", "s3fifo", "next-use"};
  const std::vector<double> fractions = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  auto results = SimulateSweep(*trace, policies, fractions, SimOptions{});
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  for (size_t f = 0; f < fractions.size(); ++f) {
    const SimResult* row = &(*results)[f * policies.size()];
    const double best = std::max({row[0].hit_ratio(), row[1].hit_ratio(), row[2].hit_ratio()});
    EXPECT_GE(row[3].hit_ratio(), best - 0.01)
        << "at " << fractions[f] * 100 << "% of the working set: next-use " << row[3].hit_ratio()
        << ", best classic " << best;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Irregular, NeverBelowTheBestClassicPolicy,
    ::testing::Values("zipf:blocks=1000,zipf=0.9,requests=60000",
                      "zipf:blocks=500,zipf=1.2,requests=60000",
                      "scanmix:blocks=1000,hot=200,scan=100,random=0.5,requests=60000",
                      "moe:tokens=1000",
                      "moe:preset=mixtral"));

TEST(AdaptivePolicy, FollowsTheShadowThatLeadsAndReportsIt) {
  // A scan through many cold blocks between reads of a few hot ones: LRU's
  // shadow is flushed by the scans, S3-FIFO's keeps the hot set, and the
  // policy ends up choosing victims as S3-FIFO would.
  auto trace = GenerateTrace("scanmix:blocks=2000,hot=50,scan=400,random=0.3,requests=60000,bytes=1");
  ASSERT_TRUE(trace.ok());
  AdaptivePolicy policy(200);
  std::vector<bool> resident(2000, false);
  uint64_t used = 0;
  for (const TraceRecord& r : trace->records) {
    policy.OnRequest(r.id, 1);
    if (resident[r.id]) {
      policy.OnAccess(r.id);
      continue;
    }
    if (used == 200) {
      auto victim = policy.ChooseVictim([](BlockId) { return true; });
      ASSERT_TRUE(victim.has_value());
      ASSERT_TRUE(resident[*victim]);
      policy.OnErase(*victim);
      resident[*victim] = false;
      --used;
    }
    policy.OnInsert(r.id, 1);
    resident[r.id] = true;
    ++used;
  }
  EXPECT_NE(policy.active(), "next-use");
  EXPECT_NE(policy.active(), "lru");
  const auto candidates = policy.Candidates();
  ASSERT_EQ(candidates.size(), 4u);
  uint64_t lru = 0, s3fifo = 0;
  for (const auto& c : candidates) {
    EXPECT_EQ(c.requests, trace->records.size());
    if (c.name == "lru") lru = c.hits;
    if (c.name == "s3fifo") s3fifo = c.hits;
  }
  EXPECT_GT(s3fifo, lru);
  EXPECT_GE(policy.switches(), 1u);
}

}  // namespace
}  // namespace tiercache
