// Allocation traces: what an allocator was asked to do, in order, so the same
// sequence can be replayed against another allocator (the pool, cudaMalloc,
// cudaMallocAsync) and compared on time and on peak memory.
//
// Format (text, one event per line, '#' starts a comment line):
//   a <id> <bytes> <stream> <time_ns>    allocate; <id> names the block
//   f <id> <stream> <time_ns>            free the block <id>
// <stream> is a small index (0, 1, ...) that the replayer maps to a real
// stream; <time_ns> counts from the start of the trace.
//
// Thread safety: pure functions over values.
#ifndef TIERCACHE_ALLOC_ALLOCATION_TRACE_H_
#define TIERCACHE_ALLOC_ALLOCATION_TRACE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tiercache {

struct TraceEvent {
  enum class Op : uint8_t { kAlloc, kFree };
  Op op = Op::kAlloc;
  uint64_t id = 0;
  uint64_t bytes = 0;  // requested bytes for kAlloc, 0 for kFree
  uint32_t stream = 0;
  uint64_t time_ns = 0;

  bool operator==(const TraceEvent&) const = default;
};

std::string FormatTrace(const std::vector<TraceEvent>& trace);
// kInvalidArgument naming the line for anything malformed.
Result<std::vector<TraceEvent>> ParseTrace(std::string_view text);
// kInvalidArgument when an id is allocated twice while live, freed while not
// live, or an allocation asks for 0 bytes.
Status ValidateTrace(const std::vector<TraceEvent>& trace);
// The most bytes live at once, by the trace's own requests.
uint64_t PeakRequestedBytes(const std::vector<TraceEvent>& trace);

struct ReplayResult {
  uint64_t allocations = 0;
  uint64_t frees = 0;
  uint64_t failures = 0;              // allocations refused (their frees are skipped)
  uint64_t peak_requested_bytes = 0;  // the trace's own peak of live bytes
  uint64_t peak_reserved_bytes = 0;   // what the allocator held at its peak
  // 1 - peak_requested / peak_reserved: the share of the allocator's peak
  // footprint that held no live request.
  double fragmentation_at_peak = 0.0;
  double seconds = 0.0;               // wall time of the replay loop
};

// How a replay reaches an allocator. `peak_reserved_bytes` is read once at
// the end (the pool's stats, cudaMemPoolAttrReservedMemHigh, ...).
struct ReplayTarget {
  std::function<Result<void*>(uint64_t bytes, uint32_t stream)> allocate;
  std::function<Status(void* pointer, uint32_t stream)> free;
  std::function<uint64_t()> peak_reserved_bytes;
};

// Replays a validated trace; blocks still live at the end are freed on the
// stream that allocated them (not counted in `frees`).
Result<ReplayResult> ReplayTrace(const std::vector<TraceEvent>& trace, const ReplayTarget& target);

// An LLM-inference-like trace: a batch of sequences is prefilled (large
// activation buffers per layer), then decoded step by step; each sequence's
// per-layer KV buffer grows by reallocation every `kv_growth_tokens`
// tokens; now and then a sequence finishes and another joins (prefill), so
// the batch size drifts by ±1 around `batch`. Stream 0 computes; stream 1
// carries the prefill's staging buffers, freed there. Deterministic in `seed`.
struct InferenceTraceOptions {
  uint32_t seed = 1;
  int layers = 16;
  uint64_t hidden = 4096;
  uint64_t bytes_per_element = 2;
  int batch = 8;
  int decode_steps = 256;
  int min_prompt_tokens = 64;
  int max_prompt_tokens = 1024;
  int kv_growth_tokens = 64;
  double finish_probability = 0.04;  // per step, that one sequence ends and one joins
};
std::vector<TraceEvent> MakeInferenceTrace(const InferenceTraceOptions& options);

}  // namespace tiercache

#endif  // TIERCACHE_ALLOC_ALLOCATION_TRACE_H_
