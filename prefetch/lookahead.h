// LookaheadDepth: how many blocks ahead the prefetcher should run.
//
// A prefetch for block i + d is issued when block i is acquired, so it has
// d compute intervals to arrive: it is on time when d * compute_ns >=
// transfer_ns (block_bytes / link bandwidth). The depth is therefore
// ceil(transfer_ns / compute_ns) plus one interval of slack for jitter in
// compute time, never more than max_depth, and never more blocks than the
// free GPU budget holds (0 when not even one fits: prefetching would only
// evict what is about to be used). With no measured compute time the link
// is the only limit and the budget decides. When the link is slower than
// compute no depth hides it; the depth still keeps the link busy.
//
// Thread safety: a pure function.
#ifndef TIERCACHE_PREFETCH_LOOKAHEAD_H_
#define TIERCACHE_PREFETCH_LOOKAHEAD_H_

#include <cstddef>
#include <cstdint>

namespace tiercache {

struct LookaheadInputs {
  double link_bytes_per_s = 0;     // measured host->device bandwidth (> 0)
  uint64_t block_bytes = 0;        // typical size of the blocks coming next
  uint64_t compute_ns = 0;         // observed time between acquires (0: unknown)
  uint64_t free_budget_bytes = 0;  // GPU memory free for prefetched blocks
  size_t max_depth = 64;
};

size_t LookaheadDepth(const LookaheadInputs& in);

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_LOOKAHEAD_H_
