#include "prefetch/lookahead.h"

#include <algorithm>
#include <cmath>

namespace tiercache {

size_t LookaheadDepth(const LookaheadInputs& in) {
  if (in.block_bytes == 0 || in.max_depth == 0) return 0;
  const uint64_t fits = in.free_budget_bytes / in.block_bytes;
  size_t wanted = in.max_depth;
  if (in.compute_ns > 0 && in.link_bytes_per_s > 0) {
    const double transfer_ns = static_cast<double>(in.block_bytes) / in.link_bytes_per_s * 1e9;
    const double intervals = std::ceil(transfer_ns / static_cast<double>(in.compute_ns));
    wanted = intervals >= static_cast<double>(in.max_depth) ? in.max_depth
                                                            : static_cast<size_t>(intervals) + 1;
  }
  return static_cast<size_t>(std::min<uint64_t>({wanted, in.max_depth, fits}));
}

}  // namespace tiercache
