// AccessPredictor: what the runtime asks of the prefetcher.
//
// The runtime reports every acquire (OnAccess) and explicit hints; it asks
// which blocks come next (to issue prefetches) and when a block is next
// needed (to feed next-use eviction). The prefetcher in prefetch/ implements
// this; the runtime works without one (no prefetch, no predictions).
//
// Thread safety: none required of implementations; the runtime serialises
// calls on one predictor.
#ifndef TIERCACHE_PREFETCH_ACCESS_PREDICTOR_H_
#define TIERCACHE_PREFETCH_ACCESS_PREDICTOR_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "prefetch/eviction/eviction_policy.h"

namespace tiercache {

class AccessPredictor {
 public:
  virtual ~AccessPredictor() = default;
  // `id` (of `bytes` bytes) was acquired at host time `now_ns`.
  virtual void OnAccess(BlockId id, uint64_t bytes, uint64_t now_ns) = 0;
  // Engine-supplied order of the next accesses; overrides learning until
  // it is consumed or contradicted.
  virtual void Hint(const std::vector<BlockId>& next) = 0;
  // Up to `max_blocks` blocks expected next, nearest first.
  virtual std::vector<BlockId> PredictNext(size_t max_blocks) = 0;
  // Accesses until `id` is expected again; kNeverUsedAgain when unknown.
  virtual uint64_t PredictDistance(BlockId id) = 0;

  // Optional feedback and sizing; the defaults suit a predictor that does
  // not measure. The runtime reports each prefetch it issues and when its
  // copy completed (both in host ns), so accuracy, lateness, wasted bytes
  // and the link bandwidth can be measured.
  virtual void OnPrefetchIssued(BlockId id, uint64_t bytes, uint64_t now_ns) {}
  virtual void OnPrefetchArrived(BlockId id, uint64_t now_ns) {}
  // How many blocks ahead to prefetch now, given the GPU room prefetches may
  // use and the link's bandwidth as the caller measured it (0: unknown, the
  // predictor's own estimate from issued/arrived prefetches is used).
  virtual size_t Lookahead(uint64_t free_budget_bytes, double link_bytes_per_s) { return 1; }
  // The order the accesses repeat in, one period of it, oldest first, when
  // the predictor is confident the stream is such a cycle (a recorded
  // schedule, or a learned one nearly always right); empty otherwise. A
  // cache may then plan which blocks to keep for the whole cycle.
  virtual std::vector<BlockId> RepeatingOrder() { return {}; }
  // Where the order is data-dependent (MoE routing), PredictNext names few
  // blocks that are not already resident: the likeliest ones are the ones a
  // cache keeps. This appends to `list` (PredictNext's, which it extends)
  // the likeliest blocks the next `horizon` accesses may use that `wanted`
  // accepts (the caller passes "not resident") and `list` lacks, at most
  // `max_blocks`, likeliest first. Default: none.
  virtual void AppendCandidates(uint64_t horizon, size_t max_blocks,
                                const std::function<bool(BlockId)>& wanted, std::vector<BlockId>* list) {}
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_ACCESS_PREDICTOR_H_
