// The irregular generators (independent Zipf picks, scans mixed with random
// reads) and the Mixtral-like MoE preset have the statistics they promise.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "prefetch/trace_generators.h"

namespace tiercache {
namespace {

TEST(GenerateZipf, PopularityFollowsTheExponentOverShuffledIds) {
  auto t = GenerateTrace("zipf:blocks=100,zipf=1.0,requests=50000,bytes=1KiB");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->records.size(), 50000u);
  std::map<BlockId, uint64_t> count;
  for (const TraceRecord& r : t->records) {
    ASSERT_LT(r.id, 100u);
    EXPECT_EQ(r.bytes, 1024u);
    ++count[r.id];
  }
  std::vector<uint64_t> by_count;
  for (const auto& [id, n] : count) by_count.push_back(n);
  std::sort(by_count.rbegin(), by_count.rend());
  // Zipf(1) over 100: rank 1 takes 1/H(100) = 19.3%, rank 2 half of that.
  EXPECT_NEAR(by_count[0] / 50000.0, 0.193, 0.01);
  EXPECT_NEAR(static_cast<double>(by_count[1]) / by_count[0], 0.5, 0.06);
  // The hottest block is not simply id 0: ids are a shuffled order.
  const auto hottest = std::max_element(count.begin(), count.end(),
                                        [](const auto& a, const auto& b) { return a.second < b.second; });
  EXPECT_NE(hottest->first, 0u);
}

TEST(GenerateScanMix, ScansRunThroughColdBlocksBetweenHotReads) {
  auto t = GenerateTrace("scanmix:blocks=1000,hot=100,scan=50,random=0.3,requests=20000");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  uint64_t hot = 0, sequential = 0, cold = 0;
  BlockId last_cold = 0;
  bool have_cold = false;
  for (const TraceRecord& r : t->records) {
    ASSERT_LT(r.id, 1000u);
    if (r.id < 100) {
      ++hot;
      continue;
    }
    ++cold;
    if (have_cold && (r.id == last_cold + 1 || (last_cold == 999 && r.id == 100))) ++sequential;
    last_cold = r.id;
    have_cold = true;
  }
  EXPECT_NEAR(hot / 20000.0, 0.3, 0.02);
  // Within a scan every cold read follows the previous one: 49 of 50.
  EXPECT_GT(static_cast<double>(sequential) / cold, 0.95);
}

TEST(GenerateIrregular, BadSpecsNameTheParameter) {
  for (const char* spec : {"zipf:blocks=0", "zipf:zipf=11", "zipf:nope=1", "scanmix:hot=1000",
                           "scanmix:random=2", "scanmix:scan=0", "moe:preset=gpt", "moe:preset=mixtral,bogus=1"}) {
    auto t = GenerateTrace(spec);
    EXPECT_EQ(t.status().code(), ErrorCode::kInvalidArgument) << spec;
  }
}

// The routing figures recorded from Mixtral-8x7B decode tokens (see
// docs/traces.md): top-expert share per layer median 16.8% (max 22.3%),
// same-layer repeat at the next token 37.6%, previous-layer pair predicts
// the layer's experts by transition counts 42% of the time.
TEST(GenerateMoe, MixtralPresetMatchesTheRecordedRoutingStatistics) {
  auto t = GenerateTrace("moe:preset=mixtral");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  constexpr uint32_t L = 32, E = 8;
  ASSERT_EQ(t->records.size(), 585u * L * 3);
  EXPECT_EQ(t->records[0].bytes, 84'000'000u);
  EXPECT_EQ(t->records[1].bytes, 352'000'000u);
  const size_t tokens = t->records.size() / (L * 3);
  // sets[token][layer] = the two experts.
  std::vector<std::vector<std::set<uint32_t>>> sets(tokens, std::vector<std::set<uint32_t>>(L));
  for (size_t i = 0; i < t->records.size(); ++i) {
    const size_t token = i / (L * 3), layer = (i % (L * 3)) / 3;
    if (i % 3 == 0) continue;  // the attention block
    sets[token][layer].insert(static_cast<uint32_t>(t->records[i].id - layer * (E + 1) - 1));
  }
  std::vector<double> top;
  for (uint32_t l = 0; l < L; ++l) {
    std::vector<uint64_t> n(E, 0);
    for (size_t k = 0; k < tokens; ++k) {
      ASSERT_EQ(sets[k][l].size(), 2u);
      for (uint32_t e : sets[k][l]) ++n[e];
    }
    top.push_back(*std::max_element(n.begin(), n.end()) / (2.0 * tokens));
  }
  std::sort(top.begin(), top.end());
  EXPECT_NEAR(top[L / 2], 0.168, 0.025);
  double repeat = 0;
  for (size_t k = 0; k + 1 < tokens; ++k) {
    for (uint32_t l = 0; l < L; ++l) {
      for (uint32_t e : sets[k][l]) repeat += sets[k + 1][l].count(e) / 2.0;
    }
  }
  EXPECT_NEAR(repeat / ((tokens - 1) * L), 0.376, 0.02);
  std::map<std::pair<uint32_t, uint32_t>, std::vector<uint64_t>> follow;  // (layer, prev) -> counts
  for (size_t k = 0; k < tokens; ++k) {
    for (uint32_t l = 1; l < L; ++l) {
      for (uint32_t p : sets[k][l - 1]) {
        auto& c = follow[{l, p}];
        c.resize(E);
        for (uint32_t e : sets[k][l]) ++c[e];
      }
    }
  }
  double right = 0;
  for (size_t k = 0; k < tokens; ++k) {
    for (uint32_t l = 1; l < L; ++l) {
      std::vector<uint64_t> score(E, 0);
      for (uint32_t p : sets[k][l - 1]) {
        for (uint32_t e = 0; e < E; ++e) score[e] += follow[{l, p}][e];
      }
      std::vector<uint32_t> order(E);
      for (uint32_t e = 0; e < E; ++e) order[e] = e;
      std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return score[a] > score[b]; });
      right += (sets[k][l].count(order[0]) + sets[k][l].count(order[1])) / 2.0;
    }
  }
  EXPECT_NEAR(right / (tokens * (L - 1)), 0.42, 0.03);
}

}  // namespace
}  // namespace tiercache
