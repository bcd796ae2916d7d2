// Belady's MIN: the offline optimum a cache is measured against.
//
// Computed on a whole trace, knowing every future access. On a miss the
// block must be brought in (demand paging: a GPU cannot compute on a block
// it does not hold), so MIN chooses only what to evict:
//   kFarthest   evicts the resident block whose next use is farthest away
//               (never-used-again first). With unit sizes this is Belady's
//               optimal algorithm; with byte sizes it is the usual
//               "Belady" of cache simulators, not provably optimal.
//   kSizeAware  among the kSizeAwareCandidates farthest blocks, evicts the
//               one with the largest (distance to next use) x bytes, so one
//               large far block goes before several small nearer ones.
//               A heuristic; it may beat kFarthest on mixed sizes.
// Time is logical: each read or write is one tick; frees take no time.
//
// Thread safety: pure functions.
#ifndef TIERCACHE_PREFETCH_BELADY_H_
#define TIERCACHE_PREFETCH_BELADY_H_

#include <vector>

#include "common/status.h"
#include "prefetch/sim_result.h"
#include "prefetch/trace.h"

namespace tiercache {

enum class BeladyVariant { kFarthest, kSizeAware };
constexpr size_t kSizeAwareCandidates = 16;

// For each record: its logical tick (reads and writes count, frees do not).
std::vector<uint64_t> TraceTicks(const Trace& trace);
// For each record: the tick of the next read or write of the same id, or
// kNeverUsedAgain (also for frees, and when a free comes first).
std::vector<uint64_t> NextUseTicks(const Trace& trace, const std::vector<uint64_t>& ticks);

// kInvalidArgument for a zero capacity or an empty trace.
Result<SimResult> RunBelady(const Trace& trace, uint64_t capacity_bytes, BeladyVariant variant);

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_BELADY_H_
