// PatternDetector: one way of learning an access pattern from the stream of
// acquires. The Prefetcher owns several and trusts each according to how
// often its recent predictions came true.
//
// Time is logical: Observe() is called once per access with `now` = 0, 1,
// 2, ...; predictions are made after the access at `now`, so a distance of 1
// means "the very next access".
//
// Thread safety: none; the Prefetcher serialises calls.
#ifndef TIERCACHE_PREFETCH_PATTERN_DETECTOR_H_
#define TIERCACHE_PREFETCH_PATTERN_DETECTOR_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "prefetch/eviction/eviction_policy.h"

namespace tiercache {

class PatternDetector {
 public:
  virtual ~PatternDetector() = default;
  virtual std::string_view name() const = 0;
  virtual void Observe(BlockId id, uint64_t bytes, uint64_t now) = 0;
  // Appends up to `n` ids expected next, nearest first (possibly none).
  virtual void PredictNext(size_t n, std::vector<BlockId>* out) const = 0;
  // Accesses after `now` until `id` is expected (>= 1), or kNeverUsedAgain
  // when this detector has no opinion.
  virtual uint64_t PredictDistance(BlockId id, uint64_t now) const = 0;
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_PATTERN_DETECTOR_H_
