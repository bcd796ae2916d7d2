// Synthetic workloads have the structure their docs promise, and specs with
// mistakes are refused with the parameter named.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "prefetch/trace_generators.h"

namespace tiercache {
namespace {

TEST(GenerateDense, LayersRepeatInOrderWithPerBlockSizes) {
  auto t = GenerateTrace("dense:layers=3,blocks=2,sizes=1KiB/3KiB,steps=4,compute_ns=10");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->records.size(), 24u);
  EXPECT_EQ(t->id_limit, 6u);
  for (size_t i = 0; i < t->records.size(); ++i) {
    EXPECT_EQ(t->records[i].id, i % 6);
    EXPECT_EQ(t->records[i].bytes, i % 2 == 0 ? 1024u : 3072u);
    EXPECT_EQ(t->records[i].time_ns, 10 * i);
    EXPECT_EQ(t->records[i].phase, i / 6 + 1);
  }
  EXPECT_EQ(WorkingSetBytes(*t), 3 * (1024u + 3072u));
}

TEST(GenerateTraining, ForwardThenReverseWithActivationsSavedAndRestored) {
  auto t = GenerateTrace("training:layers=3,steps=2,bytes=8,act_bytes=2");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  // One step: W0 A0w W1 A1w W2 A2w | W2 A2r A2f W1 A1r A1f W0 A0r A0f
  const BlockId w[] = {0, 1, 2}, a0 = 3;
  std::vector<std::pair<BlockId, TraceOp>> want = {
      {w[0], TraceOp::kRead}, {a0, TraceOp::kWrite}, {w[1], TraceOp::kRead}, {a0 + 1, TraceOp::kWrite},
      {w[2], TraceOp::kRead}, {a0 + 2, TraceOp::kWrite}, {w[2], TraceOp::kRead}, {a0 + 2, TraceOp::kRead},
      {a0 + 2, TraceOp::kFree}, {w[1], TraceOp::kRead}, {a0 + 1, TraceOp::kRead}, {a0 + 1, TraceOp::kFree},
      {w[0], TraceOp::kRead}, {a0, TraceOp::kRead}, {a0, TraceOp::kFree}};
  ASSERT_EQ(t->records.size(), 2 * want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(t->records[i].id, want[i].first) << i;
    EXPECT_EQ(t->records[i].op, want[i].second) << i;
  }
  // The second step's activations are new blocks.
  EXPECT_EQ(t->records[want.size() + 1].id, a0 + 3);
  EXPECT_EQ(t->id_limit, 3u + 6u);
}

TEST(GenerateMoe, RoutesTopKDistinctExpertsPerLayerWithSkewAndCorrelation) {
  MoeSpec spec;
  spec.layers = 4;
  spec.experts = 16;
  spec.topk = 2;
  spec.zipf = 1.2;
  spec.corr = 0.8;
  spec.tokens = 2000;
  auto t = GenerateMoe(spec);
  ASSERT_TRUE(t.ok());
  const size_t per_token = 4 * 3;
  ASSERT_EQ(t->records.size(), per_token * 2000);
  std::map<BlockId, int> uses;
  int repeats = 0, chances = 0;
  std::set<BlockId> previous;
  for (size_t token = 0; token < 2000; ++token) {
    std::set<BlockId> now;
    for (size_t j = 0; j < per_token; ++j) {
      const TraceRecord& r = t->records[token * per_token + j];
      const uint64_t layer = j / 3;
      if (j % 3 == 0) {
        EXPECT_EQ(r.id, layer * 17);  // the dense block leads its layer
        continue;
      }
      EXPECT_GT(r.id, layer * 17);
      EXPECT_LT(r.id, (layer + 1) * 17);
      now.insert(r.id);
      ++uses[r.id];
    }
    EXPECT_EQ(now.size(), 8u);  // distinct experts
    if (token > 0) {
      for (BlockId id : now) repeats += previous.count(id);
      chances += 8;
    }
    previous = now;
  }
  // Temporal correlation: far more repeats than 2 of 16 at random.
  EXPECT_GT(static_cast<double>(repeats) / chances, 0.7);
  // Skew: in layer 0 the most used expert is used far more than the least.
  int most = 0, least = INT32_MAX;
  for (BlockId id = 1; id <= 16; ++id) {
    most = std::max(most, uses[id]);
    least = std::min(least, uses[id]);
  }
  EXPECT_GT(most, 4 * std::max(least, 1));
}

TEST(GenerateMoe, IsDeterministicPerSeed) {
  auto a = GenerateTrace("moe:layers=2,experts=8,tokens=50,seed=5").value();
  auto b = GenerateTrace("moe:layers=2,experts=8,tokens=50,seed=5").value();
  auto c = GenerateTrace("moe:layers=2,experts=8,tokens=50,seed=6").value();
  EXPECT_EQ(a.records, b.records);
  EXPECT_NE(a.records, c.records);
}

TEST(GenerateTrace, RejectsBadSpecsNamingTheProblem) {
  struct Case {
    const char* spec;
    const char* needle;
  } cases[] = {
      {"sparse:layers=2", "unknown workload 'sparse'"},
      {"moe:layers=2,exprts=4", "unknown parameter 'exprts'"},
      {"moe:topk=9,experts=8", "topk"},
      {"moe:corr=1.5", "'corr'"},
      {"moe:zipf=abc", "'zipf'"},
      {"moe:layers=0", "'layers'"},
      {"moe:layers=2,layers=3", "given twice"},
      {"dense:layers", "key=value"},
      {"dense:bytes=12QB", "'bytes'"},
      {"dense:blocks=2,sizes=1KiB", "sizes lists 1"},
      {"dense:layers=1000000,steps=100000000", "limit"},
  };
  for (const Case& c : cases) {
    auto r = GenerateTrace(c.spec);
    ASSERT_FALSE(r.ok()) << c.spec;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << c.spec << " -> " << r.status().message();
  }
}

}  // namespace
}  // namespace tiercache
