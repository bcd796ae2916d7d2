// BlockCache::Block: the per-block record, shared by the cache's .cpp files.
// Not a public header.
//
// Thread safety: every field is guarded by BlockCache::mutex_ except the
// atomics, which transfer completions (device threads) also touch.
#ifndef TIERCACHE_RUNTIME_BLOCK_CACHE_INTERNAL_H_
#define TIERCACHE_RUNTIME_BLOCK_CACHE_INTERNAL_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "runtime/block_cache.h"

namespace tiercache {

struct BlockCache::Block {
  enum class Gpu { kAbsent, kLoading, kResident };

  // Fixed at registration.
  BlockId id = 0;
  std::string name;
  uint64_t bytes = 0;
  Tier* home = nullptr;
  Extent home_extent;
  bool owns_home = false;
  GroupId group = kNoGroup;
  bool alive = true;
  // CRC32C per chunk_bytes of the block; empty until known.
  std::vector<uint32_t> checksums;

  // GPU residency.
  Gpu gpu = Gpu::kAbsent;
  bool reserved = false;  // its bytes count in cached_bytes_ (loading or resident)
  void* device_ptr = nullptr;
  std::shared_ptr<TransferJob> upload;  // the upload that filled device_ptr
  uint32_t pins = 0;  // acquires whose release has not been fenced and run
  uint32_t held = 0;  // acquires not yet released (pins >= held)
  // Where the unsettled releases (pins - held) were made: with a single
  // stream, the block can be evicted at once by freeing it in that
  // stream's order.
  Stream release_stream = nullptr;
  bool release_multi = false;
  Stream acquire_stream = nullptr;  // of the last acquire (its stream waited for the upload)
  Status last_error;  // of the last failed load, for threads that waited on it
  // The engine's hint of the next use (absolute logical time), re-sent to
  // the policy after each insert/access since an access consumes it.
  uint64_t hinted_next_use = kNeverUsedAgain;
  uint64_t last_access = 0;  // logical time of the last acquire (0: never)
  // The use a predictor-driven prefetch brought the block in for, until it
  // is acquired: without it a prefetched block would rank "unknown, farthest"
  // and be the next prefetch's victim before its use.
  uint64_t prefetch_next_use = kNeverUsedAgain;
  // A prefetch gave way rather than evict a block needed sooner; an acquire
  // that waited on it loads the block itself.
  bool prefetch_gave_way = false;
  // Acquires waiting for this block's load: the load is on demand then,
  // whatever the prefetch that started it may evict.
  uint32_t demand_waiters = 0;

  // The DRAM copy (a demotion), when the home is not DRAM itself.
  bool dram_valid = false;
  Extent dram_extent;
  std::shared_ptr<TransferJob> dram_job;  // the download that fills it
  std::atomic<int> dram_readers{0};       // uploads reading the copy
};

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_BLOCK_CACHE_INTERNAL_H_
