// Thousands of random and mutated inputs per parser: none may crash (the
// sanitizer builds check memory), each must either parse or say why, and
// our checksummed binary format must never accept an altered file.
#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <string>

#include "prefetch/trace_generators.h"
#include "prefetch/trace_io.h"

namespace tiercache {
namespace {

std::string Mutate(std::string s, std::mt19937_64& rng) {
  const int kind = static_cast<int>(rng() % 6);
  auto pos = [&] { return s.empty() ? 0 : rng() % s.size(); };
  switch (kind) {
    case 0: if (!s.empty()) s[pos()] ^= static_cast<char>(1u << (rng() % 8)); break;
    case 1: if (!s.empty()) s[pos()] = static_cast<char>(rng()); break;
    case 2: s.resize(pos()); break;
    case 3: s.insert(pos(), std::string(1 + rng() % 40, static_cast<char>(rng()))); break;
    case 4: if (!s.empty()) s.erase(pos(), 1 + rng() % 40); break;
    default: for (int i = 0; i < 8 && !s.empty(); ++i) s[pos()] = "0123456789,\n-x "[rng() % 15]; break;
  }
  return s;
}

void Fuzz(TraceFormat format, int rounds) {
  Trace source = GenerateTrace("moe:layers=3,experts=5,topk=2,tokens=20,dense_bytes=0").value();
  const std::string valid = SerializeTrace(source, format).value();
  std::mt19937_64 rng(static_cast<uint64_t>(format) + 7);
  int accepted = 0;
  for (int i = 0; i < rounds; ++i) {
    std::string input = valid;
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) input = Mutate(std::move(input), rng);
    if (i % 5 == 0) {  // pure noise
      input.resize(rng() % 300);
      for (char& c : input) c = static_cast<char>(rng());
    }
    Result<Trace> r = ParseTrace(input, format);
    if (r.ok()) {
      ++accepted;
      if (format == TraceFormat::kTiercache) {
        EXPECT_EQ(input, valid) << "an altered binary trace was accepted (round " << i << ")";
      }
      for (const TraceRecord& rec : r->records) ASSERT_NE(rec.id, kInvalidBlockId);
    } else {
      const ErrorCode code = r.status().code();
      EXPECT_TRUE(code == ErrorCode::kCorruption || code == ErrorCode::kInvalidArgument ||
                  code == ErrorCode::kUnsupported) << r.status().ToString();
      EXPECT_FALSE(r.status().message().empty());
    }
    (void)DetectTraceFormat(input);
  }
  // The mutations must mostly have been caught, or the test proves nothing.
  EXPECT_LT(accepted, rounds / 2) << TraceFormatName(format);
}

TEST(TraceFuzz, TiercacheBinary) { Fuzz(TraceFormat::kTiercache, 3000); }
TEST(TraceFuzz, TiercacheCsv) { Fuzz(TraceFormat::kTiercacheCsv, 3000); }
TEST(TraceFuzz, OracleGeneral) { Fuzz(TraceFormat::kOracleGeneral, 3000); }
TEST(TraceFuzz, PlainCsv) { Fuzz(TraceFormat::kCsv, 3000); }

TEST(TraceFuzz, WorkloadSpecs) {
  std::mt19937_64 rng(3);
  const std::string seeds[] = {"moe:layers=4,experts=8,topk=2,zipf=1.1,corr=0.7,tokens=10",
                               "dense:layers=3,blocks=2,sizes=1KiB/2KiB,steps=4",
                               "training:layers=3,steps=2,act_bytes=1KiB"};
  for (int i = 0; i < 2000; ++i) {
    std::string spec = Mutate(seeds[i % 3], rng);
    // Mutated digits can ask for millions of records: valid, but slow here.
    if (std::regex_search(spec, std::regex("[0-9]{4}"))) continue;
    Result<Trace> r = GenerateTrace(spec);
    if (r.ok()) {
      EXPECT_LE(r->records.size(), kMaxGeneratedRecords);
    } else {
      EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << spec;
    }
  }
}

}  // namespace
}  // namespace tiercache
