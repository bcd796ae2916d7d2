// SimResult: what one simulated run of a trace through a cache produced.
//
// Counts only reads (acquires) as hits or misses; writes (activations
// created) take space but are counted apart. Prefetch figures are zero for
// runs without prefetching. ToJson() is the form tiercache-bench prints.
//
// Thread safety: a plain value.
#ifndef TIERCACHE_PREFETCH_SIM_RESULT_H_
#define TIERCACHE_PREFETCH_SIM_RESULT_H_

#include <cstdint>
#include <string>

namespace tiercache {

struct SimResult {
  std::string policy;
  uint64_t capacity_bytes = 0;
  uint64_t reads = 0;
  uint64_t hits = 0;     // reads that found the block resident (prefetched or not)
  uint64_t misses = 0;   // reads that had to fetch on demand
  uint64_t hit_bytes = 0;
  uint64_t miss_bytes = 0;
  uint64_t writes = 0;
  uint64_t evictions = 0;
  uint64_t bypasses = 0;  // blocks larger than the whole cache: never resident
  // Prefetching: blocks brought in ahead of their read.
  uint64_t prefetches = 0;
  uint64_t prefetch_bytes = 0;
  uint64_t prefetch_hits = 0;          // prefetched blocks read before leaving
  uint64_t prefetch_wasted = 0;        // prefetched blocks evicted (or left) unread
  uint64_t prefetch_wasted_bytes = 0;

  double hit_ratio() const { return reads == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(reads); }
  double byte_hit_ratio() const {
    const uint64_t total = hit_bytes + miss_bytes;
    return total == 0 ? 0.0 : static_cast<double>(hit_bytes) / static_cast<double>(total);
  }
  // Of the blocks prefetched, the share that was read in time.
  double prefetch_accuracy() const {
    return prefetches == 0 ? 0.0 : static_cast<double>(prefetch_hits) / static_cast<double>(prefetches);
  }
  // Of the reads that would otherwise have missed, the share a prefetch covered.
  double prefetch_coverage() const {
    const uint64_t total = prefetch_hits + misses;
    return total == 0 ? 0.0 : static_cast<double>(prefetch_hits) / static_cast<double>(total);
  }
  // One JSON object, every field above plus the derived ratios.
  std::string ToJson() const;
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_SIM_RESULT_H_
