// Trace: an ordered list of block accesses, the common currency of the
// prefetcher's tests, the policy simulator and tiercache-bench.
//
// A trace is what the runtime records (one record per acquire, plus the
// writes and frees of activation blocks) or what a generator or a public
// cache trace supplies. Formats and readers are in trace_io.h; synthetic
// workloads in trace_generators.h.
//
// Thread safety: plain values.
#ifndef TIERCACHE_PREFETCH_TRACE_H_
#define TIERCACHE_PREFETCH_TRACE_H_

#include <cstdint>
#include <vector>

#include "prefetch/eviction/eviction_policy.h"

namespace tiercache {

// Block ids equal to this are reserved (no trace may contain them).
constexpr BlockId kInvalidBlockId = UINT64_MAX;

enum class TraceOp : uint8_t {
  kRead = 0,   // an acquire: the block must be resident to be used
  kWrite = 1,  // a block was created with new contents (an activation saved)
  kFree = 2,   // the block's contents are dead (an activation restored for the last time)
};

struct TraceRecord {
  uint64_t time_ns = 0;  // host time of the access; only order matters to the simulator
  BlockId id = 0;
  uint64_t bytes = 0;    // > 0 for reads and writes
  TraceOp op = TraceOp::kRead;
  uint32_t phase = 0;    // the engine's optional step/phase mark; 0: none

  friend bool operator==(const TraceRecord&, const TraceRecord&) = default;
};

struct Trace {
  std::vector<TraceRecord> records;
  // When non-zero every id is below it (the runtime's dense block ids).
  uint64_t id_limit = 0;
};

// Sum over distinct ids of their (last seen) size: what a cache needs to
// hold everything at once.
uint64_t WorkingSetBytes(const Trace& trace);
// Number of distinct ids among reads and writes.
uint64_t DistinctBlocks(const Trace& trace);

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_TRACE_H_
