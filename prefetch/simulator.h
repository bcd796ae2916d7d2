// Simulator: replays a trace through a cache of a given byte capacity under
// a given policy, offline and deterministically. tiercache-bench's simulate
// mode and the policy benchmarks call it.
//
// Policies:
//   lru, arc, s3fifo      the runtime's policies (prefetch/eviction/)
//   next-use              the runtime's next-use policy (AdaptivePolicy: next
//                         use predicted by a Prefetcher that learns from the
//                         same trace as it goes, no look at the future, with
//                         shadow LRU/ARC/S3-FIFO caches to fall back on)
//   next-use+prefetch     the same, and after each access the Prefetcher's
//                         PredictNext(depth) blocks are brought in ahead,
//                         evicting only blocks predicted to be needed later
//   next-use-oracle       NextUsePolicy fed the exact next uses (equals MIN;
//                         a check of the policy, not a real option)
//   min, min-size         Belady's MIN and its size-aware variant (belady.h)
// A read of a resident block is a hit, else a miss and the block is brought
// in (evicting until it fits); writes bring blocks in without counting;
// frees drop them. Blocks larger than the cache are bypassed.
//
// Thread safety: pure functions; distinct calls may run concurrently.
#ifndef TIERCACHE_PREFETCH_SIMULATOR_H_
#define TIERCACHE_PREFETCH_SIMULATOR_H_

#include <string>
#include <vector>

#include "common/status.h"
#include "prefetch/prefetcher.h"
#include "prefetch/sim_result.h"
#include "prefetch/trace.h"

namespace tiercache {

struct SimOptions {
  std::string policy = "lru";
  uint64_t capacity_bytes = 0;
  // Every block counts as 1 byte, so capacity_bytes is a block count (the
  // textbook setting in which MIN is optimal).
  bool unit_sizes = false;
  // next-use+prefetch: blocks fetched ahead per access; 0 derives it with
  // LookaheadDepth from link_bytes_per_s, the trace's mean time between
  // accesses, its mean block size and the capacity as the budget.
  size_t prefetch_depth = 0;
  double link_bytes_per_s = 25e9;
  PrefetcherOptions prefetcher;
};

// The names above, in the order benchmarks print them.
const std::vector<std::string>& SimulatedPolicies();

// kInvalidArgument for an unknown policy, a zero capacity or an empty trace.
Result<SimResult> Simulate(const Trace& trace, const SimOptions& options);

// Every policy at every capacity, capacities given as fractions of the
// working set (WorkingSetBytes, or DistinctBlocks with unit_sizes), each at
// least 1. Results in (fraction, policy) order.
Result<std::vector<SimResult>> SimulateSweep(const Trace& trace, const std::vector<std::string>& policies,
                                             const std::vector<double>& fractions, const SimOptions& base);

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_SIMULATOR_H_
