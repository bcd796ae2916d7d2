// Allocation traces: the text format, validation, the generated
// inference-like workload, and replay against any allocator.
#include "alloc/allocation_trace.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>

namespace tiercache {
namespace {

using Op = TraceEvent::Op;

TEST(AllocationTraceTest, FormatParseRoundTrip) {
  std::vector<TraceEvent> trace = {{Op::kAlloc, 1, 4096, 0, 10},
                                   {Op::kAlloc, 2, 1 << 20, 1, 20},
                                   {Op::kFree, 1, 0, 1, 30},
                                   {Op::kFree, 2, 0, 0, 40}};
  Result<std::vector<TraceEvent>> parsed = ParseTrace(FormatTrace(trace));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, trace);
}

TEST(AllocationTraceTest, ParseRejectsMalformedLinesNamingThem) {
  for (const char* text : {"a 1 100 0\n", "x 1 2 3 4\n", "a 1 -5 0 0\n", "f 1 0\n",
                           "a 1 100 0 1 9\n", "a 1 10x 0 0\n", "f 1 99999999999 0\n"}) {
    Result<std::vector<TraceEvent>> parsed = ParseTrace(text);
    EXPECT_EQ(parsed.status().code(), ErrorCode::kInvalidArgument) << text;
    EXPECT_NE(parsed.status().message().find("line 1"), std::string::npos) << text;
  }
  Result<std::vector<TraceEvent>> ok = ParseTrace("# comment\n\na 1 100 0 0\r\nf 1 0 5\n");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->size(), 2u);
}

TEST(AllocationTraceTest, ValidateCatchesInconsistentTraces) {
  EXPECT_TRUE(ValidateTrace({{Op::kAlloc, 1, 8, 0, 0}, {Op::kFree, 1, 0, 0, 1},
                             {Op::kAlloc, 1, 8, 0, 2}}).ok());  // ids may be reused once freed
  EXPECT_FALSE(ValidateTrace({{Op::kAlloc, 1, 8, 0, 0}, {Op::kAlloc, 1, 8, 0, 1}}).ok());
  EXPECT_FALSE(ValidateTrace({{Op::kFree, 3, 0, 0, 0}}).ok());
  EXPECT_FALSE(ValidateTrace({{Op::kAlloc, 1, 0, 0, 0}}).ok());
}

TEST(AllocationTraceTest, PeakRequestedBytesFollowsTheLiveSet) {
  std::vector<TraceEvent> trace = {{Op::kAlloc, 1, 100, 0, 0}, {Op::kAlloc, 2, 50, 0, 0},
                                   {Op::kFree, 1, 0, 0, 0},    {Op::kAlloc, 3, 120, 0, 0},
                                   {Op::kFree, 2, 0, 0, 0},    {Op::kFree, 3, 0, 0, 0}};
  EXPECT_EQ(PeakRequestedBytes(trace), 170u);
}

TEST(AllocationTraceTest, InferenceTraceHasTheAdvertisedShape) {
  InferenceTraceOptions options;
  options.layers = 4;
  options.decode_steps = 400;
  options.finish_probability = 0.1;
  std::vector<TraceEvent> trace = MakeInferenceTrace(options);
  ASSERT_TRUE(ValidateTrace(trace).ok());
  EXPECT_EQ(trace, MakeInferenceTrace(options));  // deterministic in the seed
  options.seed = 2;
  EXPECT_NE(trace, MakeInferenceTrace(options));

  std::set<uint32_t> streams;
  std::map<uint64_t, uint64_t> live;
  uint64_t allocations = 0, frees = 0;
  for (const TraceEvent& event : trace) {
    streams.insert(event.stream);
    if (event.op == Op::kAlloc) {
      ++allocations;
      live[event.id] = event.bytes;
    } else {
      ++frees;
      live.erase(event.id);
    }
  }
  EXPECT_EQ(allocations, frees);  // everything is freed at the end
  EXPECT_TRUE(live.empty());
  EXPECT_EQ(streams, (std::set<uint32_t>{0, 1}));
  // KV buffers grow: some allocation sizes are multiples of the KV growth
  // step per layer, and they are of several different sizes.
  uint64_t kv_step = uint64_t(options.kv_growth_tokens) * 2 * options.hidden * options.bytes_per_element;
  std::set<uint64_t> kv_sizes;
  for (const TraceEvent& event : trace) {
    if (event.op == Op::kAlloc && event.bytes % kv_step == 0) kv_sizes.insert(event.bytes);
  }
  EXPECT_GE(kv_sizes.size(), 5u);
  // The batch drifts: decode steps' first activation (batch x hidden x 2
  // bytes) takes more than one width.
  uint64_t token_bytes = options.hidden * options.bytes_per_element;
  std::set<uint64_t> widths;
  for (const TraceEvent& event : trace) {
    if (event.op == Op::kAlloc && event.bytes % token_bytes == 0 && event.bytes / token_bytes <= 16) {
      widths.insert(event.bytes / token_bytes);
    }
  }
  EXPECT_GE(widths.size(), 2u);
}

TEST(AllocationTraceTest, ReplayDrivesAnyAllocatorAndCountsFailures) {
  std::vector<TraceEvent> trace = {{Op::kAlloc, 1, 100, 0, 0}, {Op::kAlloc, 2, 1000, 0, 0},
                                   {Op::kFree, 1, 0, 0, 0},    {Op::kAlloc, 3, 10, 1, 0},
                                   {Op::kFree, 2, 0, 0, 0}};
  std::map<void*, uint64_t> held;
  ReplayTarget target;
  target.allocate = [&](uint64_t bytes, uint32_t stream) -> Result<void*> {
    if (bytes == 1000) return Status::OutOfMemory("too big for this test");
    void* p = std::malloc(bytes);
    held[p] = bytes;
    return p;
  };
  target.free = [&](void* p, uint32_t stream) {
    if (held.erase(p) == 0) return Status::InvalidArgument("unknown");
    std::free(p);
    return Status::Ok();
  };
  target.peak_reserved_bytes = [] { return uint64_t{2000}; };
  Result<ReplayResult> result = ReplayTrace(trace, target);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->allocations, 2u);
  EXPECT_EQ(result->failures, 1u);
  EXPECT_EQ(result->frees, 1u);         // the failed block's free is skipped
  EXPECT_TRUE(held.empty());            // block 3, still live at the end, was freed
  EXPECT_EQ(result->peak_requested_bytes, 1100u);
  EXPECT_DOUBLE_EQ(result->fragmentation_at_peak, 1.0 - 1100.0 / 2000.0);
  EXPECT_EQ(ReplayTrace({{Op::kFree, 9, 0, 0, 0}}, target).status().code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace tiercache
