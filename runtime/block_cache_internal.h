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
  bool home_direct = false;  // home memory is registered: uploads DMA from it
  // The home extent holds the bf16 codec's encoding of the block's `bytes`
  // (see docs/codec.md), and so does a DRAM copy (staged from a slow home;
  // encoded blocks are never demoted); uploads decode on the GPU. Fixed at
  // registration, or set with the re-homing by MirrorHome (the loading
  // thread, under mutex_).
  bool encoded = false;
  GroupId group = kNoGroup;
  bool alive = true;
  // CRC32C per chunk_bytes of the block; empty until known.
  std::vector<uint32_t> checksums;
  // A persistent tier the first load from home copies the block into, and
  // the key it is committed under (RegisterMirrored); null once done or
  // given up.
  Tier* mirror = nullptr;
  uint64_t mirror_key = 0;
  codec::Compression mirror_compression = codec::Compression::kOff;
  // MirrorHome is copying home into the mirror: no DRAM copy is staged
  // from the old home meanwhile (it might not hold what the new one will).
  bool mirroring = false;

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
  // Acquires between its last two acquires (0: fewer than two): bounds how
  // deep the DRAM staging asks the predictor (see DramStageLoop).
  uint64_t reuse_distance = 0;
  // The predictor's next use for it, asked right after its last acquire
  // (absolute; kNeverUsedAgain: none). Kept because a predictor may place a
  // block only just after using it, and DRAM copies are ranked long after.
  uint64_t predicted_next_use = kNeverUsedAgain;
  // The use a predictor-driven prefetch brought the block in for, until it
  // is acquired: without it a prefetched block would rank "unknown, farthest"
  // and be the next prefetch's victim before its use.
  uint64_t prefetch_next_use = kNeverUsedAgain;
  // A prefetch gave way rather than evict a block needed sooner; an acquire
  // that waited on it loads the block itself.
  bool prefetch_gave_way = false;
  // Brought in by a predictor-driven prefetch and not acquired since: its
  // first acquire tells the predictor whether the copy had arrived.
  bool prefetched = false;
  // Streamed: its residency began with a load that served its latest
  // acquire (false once an acquire finds it already there: kept). See
  // BlockCache::OlderStreamedVictimLocked.
  bool streamed = false;
  bool loaded_since_acquire = false;
  // Kept for the whole cycle by the cycle plan (BlockCache::UpdateCyclePlanLocked).
  bool plan_kept = false;
  // Acquires waiting for this block's load: the load is on demand then,
  // whatever the prefetch that started it may evict.
  uint32_t demand_waiters = 0;

  // The DRAM copy (a demotion, or a staging read from a slow home ahead of
  // use), when the home is not DRAM itself. A staged copy is published only
  // once read and verified, so it has no job.
  bool dram_valid = false;
  Extent dram_extent;
  std::shared_ptr<TransferJob> dram_job;  // the download that fills it; null when staged
  // The staging thread is reading the block from home into a DRAM extent
  // it holds (not yet the copy): Unregister waits for it to finish.
  bool dram_staging = false;
  // The use a staged copy was read for, until it passes: without it a copy
  // whose block the predictor cannot place would rank "unknown, farthest"
  // and be the next demotion's victim before its use.
  uint64_t dram_staged_use = kNeverUsedAgain;
  std::atomic<int> dram_readers{0};       // uploads reading the copy
};

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_BLOCK_CACHE_INTERNAL_H_
