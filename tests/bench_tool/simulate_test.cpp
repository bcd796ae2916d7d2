// Simulate mode against counts worked out by hand, and workloads from specs.
#include "tools/bench/simulate.h"

#include <gtest/gtest.h>

#include "tools/bench/workload.h"

namespace tiercache::bench {
namespace {

// Every block is 1 byte, so a capacity in bytes is a capacity in blocks.
Workload UnitWorkload(const std::vector<BlockId>& ids) {
  Trace trace;
  uint64_t time = 0;
  for (BlockId id : ids) trace.records.push_back({time++, id, 1, TraceOp::kRead, 0});
  return MakeWorkload("hand-made", std::move(trace));
}

const PolicyPoint& Only(const std::vector<PolicyCurve>& curves, const std::string& policy) {
  for (const PolicyCurve& curve : curves) {
    if (curve.policy == policy) return curve.points.at(0);
  }
  ADD_FAILURE() << "no curve for " << policy;
  static PolicyPoint none;
  return none;
}

TEST(SimulateTest, MixedTraceMatchesHandCounts) {
  // A B C A B D A B C D with room for 3 blocks (75% of the 4-block set).
  // LRU: A B C miss; A B hit; D misses and evicts C (LRU order C A B);
  //      A B hit; C misses, evicts D; D misses, evicts A.
  //      -> 4 hits, 6 misses.
  // MIN: A B C miss; A B hit; D misses and evicts C (next uses: A@7 B@8
  //      C@9, C is farthest); A B hit; C misses and evicts A or B (neither
  //      is used again); D hits. -> 5 hits, 5 misses.
  Workload workload = UnitWorkload({0, 1, 2, 0, 1, 3, 0, 1, 2, 3});
  Result<std::vector<PolicyCurve>> curves = SimulatePolicies(workload, {"lru", "min"}, {0.75}, nullptr);
  ASSERT_TRUE(curves.ok()) << curves.status().ToString();
  const PolicyPoint& lru = Only(*curves, "lru");
  EXPECT_EQ(lru.cache_bytes, 3u);
  EXPECT_EQ(lru.requests, 10u);
  EXPECT_EQ(lru.hits, 4u);
  EXPECT_EQ(lru.misses, 6u);
  EXPECT_EQ(lru.bytes_missed, 6u);
  const PolicyPoint& min = Only(*curves, "min");
  EXPECT_EQ(min.hits, 5u);
  EXPECT_EQ(min.misses, 5u);
  Result<double> belady = BeladyHitRatio(workload, 3);
  ASSERT_TRUE(belady.ok());
  EXPECT_DOUBLE_EQ(*belady, 0.5);
}

TEST(SimulateTest, CyclicScanMatchesHandCounts) {
  // 0 1 2 3 three times with room for 2 blocks (50%).
  // LRU always evicts the block needed soonest: 12 misses.
  // MIN (t = request number): 0 1 miss; 2@t3 evicts 1 (0 is needed at t5,
  // 1 at t6); 3@t4 evicts 2; 0@t5 hits; 1@t6 evicts 0 (0@t9 after 3@t8);
  // 2@t7 evicts 1; 3@t8 hits; 0@t9 evicts 3 (3@t12 after 2@t11); 1@t10
  // evicts 0 (never again); 2@t11 hits; 3@t12 misses. -> 3 hits, 9 misses.
  Workload workload = UnitWorkload({0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3});
  Result<std::vector<PolicyCurve>> curves = SimulatePolicies(workload, {"lru", "min"}, {0.5}, nullptr);
  ASSERT_TRUE(curves.ok()) << curves.status().ToString();
  EXPECT_EQ(Only(*curves, "lru").hits, 0u);
  EXPECT_EQ(Only(*curves, "lru").misses, 12u);
  EXPECT_EQ(Only(*curves, "min").hits, 3u);
  EXPECT_EQ(Only(*curves, "min").misses, 9u);
}

TEST(SimulateTest, EveryPolicyAtEverySize) {
  Result<Workload> workload = GenerateWorkload("dense:layers=8,blocks=2,bytes=1MiB,steps=6");
  ASSERT_TRUE(workload.ok()) << workload.status().ToString();
  std::vector<std::string> policies = {"lru", "arc", "s3fifo", "next-use", "tiercache",
                                       "tiercache+prefetch", "min"};
  Result<std::vector<PolicyCurve>> curves =
      SimulatePolicies(*workload, policies, {0.25, 0.5, 0.75}, nullptr);
  ASSERT_TRUE(curves.ok()) << curves.status().ToString();
  ASSERT_EQ(curves->size(), policies.size());
  for (const PolicyCurve& curve : *curves) {
    ASSERT_EQ(curve.points.size(), 3u) << curve.policy;
    for (const PolicyPoint& point : curve.points) {
      EXPECT_EQ(point.hits + point.misses, point.requests) << curve.policy;
      EXPECT_EQ(point.requests, 96u);
      EXPECT_EQ(point.bytes_missed, point.misses * (1u << 20)) << curve.policy;
    }
  }
  // On a cyclic scan LRU gets nothing and MIN is the ceiling for every
  // demand-only policy.
  const PolicyCurve& min = curves->back();
  for (const PolicyCurve& curve : *curves) {
    if (curve.policy == "tiercache+prefetch") {
      ASSERT_TRUE(curve.points[0].prefetch.has_value());
      continue;
    }
    for (size_t i = 0; i < curve.points.size(); ++i) {
      EXPECT_LE(curve.points[i].hits, min.points[i].hits) << curve.policy;
    }
  }
  EXPECT_EQ((*curves)[0].points[1].hits, 0u);
}

TEST(WorkloadTest, StepsFollowThePhaseMarks) {
  Result<Workload> workload = GenerateWorkload("dense:layers=4,blocks=2,bytes=4KiB,steps=3");
  ASSERT_TRUE(workload.ok()) << workload.status().ToString();
  EXPECT_EQ(workload->requests.size(), 24u);
  EXPECT_EQ(workload->block_bytes.size(), 8u);
  EXPECT_EQ(workload->step_starts, (std::vector<uint64_t>{0, 8, 16}));
  EXPECT_EQ(workload->UniformBlockBytes(), 4096u);
  EXPECT_EQ(workload->WorkingSetBytes(), 8u * 4096);
}

TEST(WorkloadTest, BadSpecsNameTheParameter) {
  for (const char* spec : {"dense:layers=0", "dense:colour=red", "moe:topk=x", "sparse:layers=2"}) {
    Result<Workload> workload = GenerateWorkload(spec);
    ASSERT_FALSE(workload.ok()) << spec;
    EXPECT_EQ(workload.status().code(), ErrorCode::kInvalidArgument) << spec;
    EXPECT_NE(workload.status().message().find(spec), std::string::npos);
  }
}

TEST(WorkloadTest, MissingTraceIsNotFound) {
  Result<Workload> workload = LoadTrace("/nonexistent/trace.csv", "auto");
  ASSERT_FALSE(workload.ok());
  EXPECT_EQ(workload.status().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(LoadTrace("/nonexistent/trace.csv", "morse").ok());
}

}  // namespace
}  // namespace tiercache::bench
