// BlockCache: the heart of the runtime. It owns the registry of weight
// blocks, knows where each block is resident (its home tier always, the GPU
// and a DRAM copy possibly), pins what engines hold, evicts what they do not,
// and moves bytes through the TransferEngine.
//
// The data path
// - Register: a block's bytes go to (or already live in) its home tier and
//   stay recoverable from there for the block's life. Blocks may be grouped
//   (a layer, an expert) so one call acquires the group.
// - Acquire(block, stream): a GPU-resident block is pinned and its pointer
//   returned; if its upload is still running, `stream` is made to wait on
//   the upload's event (StreamWaitEvent: the host does not wait). A block
//   that is not resident is brought up first: from the DRAM copy if there
//   is one, else from home (pinned DRAM directly; NVMe and PMEM through the
//   staging ring). On a miss the calling thread waits for the host side of
//   the transfer only (the I/O and the checksum checks, so that a failed or
//   corrupted read is reported here rather than handed to the GPU); it
//   never waits for the copy to the device.
// - Release(block, stream): the pin is dropped once the work enqueued on
//   `stream` so far has run. Releases are batched per stream and fenced
//   with one event when the cache needs room, so a release is a few
//   nanoseconds of bookkeeping, not a device call. An acquire that calls
//   the device anyway (its block's upload is still running) first fences
//   the stream's earlier releases with one event, so that memory evicted
//   later is handed on behind the end of its last use.
// - Eviction: GPU residency is bounded by gpu_cache_bytes (when set) and by
//   the device allocator's budget, whose pressure callback evicts unpinned
//   blocks when the engine itself needs memory. The victim is chosen by the
//   GPU EvictionPolicy among blocks with no pins and no upload running. An
//   evicted NVMe/PMEM-homed block is demoted: copied to the DRAM tier on the
//   download stream, concurrently with uploads, and refetched from there.
// - Prefetch never makes room by evicting a block predicted to be needed
//   sooner than the prefetched one (or, for order-driven prefetches, sooner
//   than the blocks acquired before it); such a prefetch gives way and the
//   block comes later or on demand. A prefetched block keeps the use it was
//   brought for as its prediction until it is acquired.
// - DRAM staging (dram_prefetch_lookahead > 0, with a predictor and a DRAM
//   tier): a staging thread reads the predicted next blocks that have no
//   GPU residency and no DRAM copy and whose home is slow (NVMe, PMEM) into
//   DRAM copies, verified against the block's checksums, deeper ahead than
//   GPU prefetch (it needs no GPU room). It never evicts a DRAM copy needed
//   sooner than the staged block, nor one an upload reads; demotions obey
//   the same rule. A failed staging read leaves no copy and is counted as
//   an error of the home tier; the engine never sees it.
// - Failures: a read error, a short read or a checksum mismatch is retried
//   from the same tier (io_retries), then, if the source was the DRAM copy,
//   from home; if home also fails the acquire returns the error. The block
//   stays registered and intact at home; no other block is touched.
//
// Thread safety: every public method may be called from any thread. One
// mutex guards the registry, residency and policies; it is never held
// across a device allocation, a host wait or a tier I/O.
#ifndef TIERCACHE_RUNTIME_BLOCK_CACHE_H_
#define TIERCACHE_RUNTIME_BLOCK_CACHE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "alloc/device.h"
#include "alloc/device_allocator.h"
#include "codec/compression.h"
#include "prefetch/access_predictor.h"
#include "prefetch/prefetcher.h"
#include "runtime/config.h"
#include "prefetch/eviction/eviction_policy.h"
#include "runtime/staging_pool.h"
#include "runtime/stats.h"
#include "runtime/transfer_engine.h"
#include "tiers/tier.h"

namespace tiercache {

using GroupId = uint64_t;
constexpr GroupId kNoGroup = UINT64_MAX;

// Flags the cache commits persistent extents with (Tier::Commit).
constexpr uint32_t kCommitFlagBf16 = 1u << 0;  // the extent holds the bf16 codec's encoding
constexpr uint32_t kCommitFlagsKnown = kCommitFlagBf16;

// What the cache reports about one block (a snapshot).
struct BlockInfo {
  BlockId id = 0;
  std::string name;
  uint64_t bytes = 0;
  std::string home_tier;
  GroupId group = kNoGroup;
  bool on_gpu = false;        // resident or loading
  bool gpu_ready = false;     // the upload has run
  bool in_dram = false;       // a DRAM copy exists (not counting a DRAM home)
  uint32_t pins = 0;          // acquires not yet released and fenced
};

// The compressed blocks (a snapshot). The ratio a run achieved is
// stored_bytes / raw_bytes; over the link, moved_bytes / decoded_bytes.
// Encoded uploads by the tier they read from (a block's home, or DRAM for
// its DRAM copy). upload_ns sums each upload's time from its start to its
// last decode's completion (uploads may overlap; the device has no timing
// events), so decoded_bytes / upload_ns is a per-upload rate.
struct CodecTierStats {
  std::string tier;
  uint64_t uploads = 0;
  uint64_t moved_bytes = 0;    // encoded bytes read from the tier
  uint64_t decoded_bytes = 0;  // bytes those uploads delivered decoded
  uint64_t upload_ns = 0;
  double decoded_gbps() const { return upload_ns ? static_cast<double>(decoded_bytes) / upload_ns : 0.0; }
};

struct CodecStats {
  uint64_t blocks = 0;         // registered encoded, alive
  uint64_t raw_bytes = 0;      // their decoded size
  uint64_t stored_bytes = 0;   // their encoded size in their home tiers
  uint64_t uploads = 0;        // encoded uploads enqueued
  uint64_t moved_bytes = 0;    // encoded bytes copied to the device by them
  uint64_t decoded_bytes = 0;  // bytes they delivered decoded
  uint64_t runs = 0;           // runs of chunks through the device staging ring
  std::vector<CodecTierStats> tiers;  // tiers that served encoded uploads
};

class BlockCache {
 public:
  // `dram` (may be null) is the host cache tier for demotions and the source
  // of the staging ring; `dram_pinned` says its memory is registered with
  // the device. `allocator` must outlive the cache; the cache installs its
  // pressure callback and removes it on destruction.
  static Result<std::unique_ptr<BlockCache>> Create(std::shared_ptr<Device> device,
                                                    DeviceAllocator* allocator,
                                                    const RuntimeConfig& config, Tier* dram,
                                                    bool dram_pinned);
  ~BlockCache();
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // Makes `tier` usable as a home. `device_registered`: its memory is pinned,
  // so uploads DMA straight from it. The DRAM tier is attached by Create.
  Status AttachTier(Tier* tier, bool device_registered);
  // The reverse, before `tier` goes away: kBusy while a block is homed
  // there. Its traffic stays in the stats.
  Status DetachTier(Tier* tier);

  // ---- registry (block_registry.cpp) ---------------------------------------
  Result<GroupId> CreateGroup(std::string name);
  // Copies data[0, bytes) into a new extent of `home`. `compression`
  // (default: the config's) may store the bf16 codec's encoding instead
  // (docs/codec.md): bf16 always, auto when it saves 10%. Encoded blocks need
  // the DRAM tier as home: bf16 elsewhere is kUnsupported, auto stores the
  // bytes as given.
  Result<BlockId> RegisterFromBuffer(std::string name, const void* data, uint64_t bytes,
                                     Tier* home, GroupId group = kNoGroup,
                                     std::optional<codec::Compression> compression = std::nullopt);
  // Copies [offset, offset + bytes) of the file at `path` into `home`.
  Result<BlockId> RegisterFromFile(std::string name, const std::string& path, uint64_t offset,
                                   uint64_t bytes, Tier* home, GroupId group = kNoGroup);
  // A block whose bytes already live in `extent` of `home` (not freed by
  // the cache). Checksums are taken now when the tier is byte-addressable,
  // else from the first read.
  Result<BlockId> RegisterFromTier(std::string name, Tier* home, Extent extent,
                                   GroupId group = kNoGroup);
  // A block found again in a persistent tier's index (Tier::Lookup). An
  // extent committed with kCommitFlagBf16 holds the codec's encoding: the
  // block is its decoded size and stays encoded (whatever the config's
  // compression now); its header, table and directory are checked here
  // (kCorruption). Unknown flags (a newer writer) are kUnsupported. With
  // `expected_bytes` (0: any), a block of another size is kCorruption and
  // nothing is registered.
  Result<BlockId> RegisterFromKey(std::string name, Tier* home, uint64_t key,
                                  GroupId group = kNoGroup, uint64_t expected_bytes = 0);
  // As RegisterFromTier, and the first load from home also copies the
  // block into a new extent of `mirror` (an attached persistent tier with
  // host addresses: PMEM), commits it there under `key` and re-homes the
  // block on it; the extent outlives the cache, so a later process finds it
  // with RegisterFromKey (warm restart). Nothing is copied here. With
  // `compression` (default: the config's) bf16 or auto, the mirror holds
  // the codec's encoding as RegisterFromBuffer would store it (committed
  // with kCommitFlagBf16), so loads from it move fewer bytes; that first
  // load reads the whole block into host memory once to encode it. A
  // mirror that fails (no room, an I/O error) is logged and given up; the
  // block stays homed where it was.
  Result<BlockId> RegisterMirrored(std::string name, Tier* home, Extent extent, Tier* mirror,
                                   uint64_t key, GroupId group = kNoGroup,
                                   std::optional<codec::Compression> compression = std::nullopt);
  // kBusy while pinned or loading. Frees every copy the cache made.
  Status Unregister(BlockId id);
  Result<BlockId> FindBlock(std::string_view name) const;
  Result<BlockInfo> Info(BlockId id) const;
  Result<std::vector<BlockId>> GroupMembers(GroupId group) const;

  // ---- data path (block_cache.cpp) -----------------------------------------
  Result<void*> Acquire(BlockId id, Stream stream);
  // Never waits: kBusy when the block is not on the GPU yet (a prefetch is
  // started for it), else as Acquire.
  Result<void*> TryAcquire(BlockId id, Stream stream);
  // kInvalidArgument when the block is not acquired.
  Status Release(BlockId id, Stream stream);
  // Starts bringing `ids` to the GPU in the background, in order. A block
  // with a next-use hint is not brought in at the cost of evicting a block
  // hinted or predicted to be needed sooner.
  Status Prefetch(const std::vector<BlockId>& ids);
  // Acquires every member in order (all or none).
  Result<std::vector<void*>> AcquireGroup(GroupId group, Stream stream);
  Status ReleaseGroup(GroupId group, Stream stream);

  // ---- hints and prediction ------------------------------------------------
  // `id` is next used `accesses_from_now` acquires from now (feeds the
  // next-use policy; kNeverUsedAgain for never).
  Status HintNextUse(BlockId id, uint64_t accesses_from_now);
  // The next acquires, in order: feeds next-use predictions, the predictor,
  // and prefetches the first prefetch_lookahead blocks. Prefetches driven by
  // an order (this one or the predictor's) evict only what demand eviction
  // would evict when the block is used (see PlanPrefetchesLocked), so a
  // deeper lookahead never moves more bytes; it only starts copies earlier
  // where that costs nothing.
  Status HintOrder(const std::vector<BlockId>& next);
  // Replaces the cache's own prefetcher (config `prefetch`: learn, hints)
  // with `predictor` (not owned); null removes prediction altogether. With
  // a predictor, every acquire reports to it and prefetches what it
  // predicts, as deep as the run-time lookahead (see CurrentLookahead).
  void SetPredictor(AccessPredictor* predictor);
  // How many blocks ahead prefetches run now: derived after each acquire
  // from the measured link bandwidth, block sizes, time between acquires
  // and GPU room, capped by prefetch_lookahead when that is set.
  size_t CurrentLookahead() const;
  // The cache's own prefetcher (null with prefetch = off or after
  // SetPredictor). For its stats; calls on it need no lock only while no
  // other thread uses the cache.
  const Prefetcher* learner() const { return learner_.get(); }

  // ---- eviction (cache_eviction.cpp) ---------------------------------------
  // Evicts unpinned GPU blocks until `bytes_needed` are freed or none is
  // left; returns the bytes freed. The allocator's pressure callback.
  uint64_t EvictUnpinned(uint64_t bytes_needed);
  // Evicts one block from the GPU now (demoting it). kBusy when pinned.
  Status Evict(BlockId id);

  // Waits until every background load, DRAM staging read and transfer has
  // finished and every released pin has been settled (tests, shutdown,
  // benchmarks between phases). A host wait: never call it on a latency
  // path.
  Status Drain();

  RuntimeStats& stats() { return stats_; }
  // Blocks stored in the bf16 codec's encoding and what their uploads moved.
  CodecStats codec_stats() const;
  int gpu_stats_slot() const { return gpu_slot_; }
  uint64_t gpu_cached_bytes() const;
  // Bytes the GPU cache may hold: gpu_cache_bytes, else the allocator's
  // budget.
  uint64_t gpu_capacity() const;
  TransferEngine& transfer() { return *transfer_; }
  const RuntimeConfig& config() const { return config_; }
  std::string StatsJson() const;
  // For the activation store: the DRAM tier and its stats slot.
  Tier* dram() const { return dram_; }
  bool dram_pinned() const { return dram_pinned_; }
  int StatsSlotOf(const Tier* tier) const;

  struct Block;  // defined in block_cache_internal.h
  struct AttachedTier {
    Tier* tier;
    bool direct;
    int stats_slot;
  };

 private:
  BlockCache(std::shared_ptr<Device> device, DeviceAllocator* allocator,
             const RuntimeConfig& config);

  // Registration helpers.
  Result<BlockId> AddBlock(std::string name, uint64_t bytes, Tier* home, Extent extent,
                           bool owns_extent, GroupId group, std::vector<uint32_t> checksums,
                           bool encoded = false);
  // CRC32C per chunk of `extent` when checksums are on and the tier has
  // host addresses; else empty (taken from the first read).
  std::vector<uint32_t> HostChecksums(Tier* home, const Extent& extent) const;
  // Marks a block as stored encoded in `stored_bytes` and counts it.
  void MarkEncodedLocked(Block* b, uint64_t stored_bytes);
  // The compression a registration asked for, or the config's.
  Result<codec::Compression> CompressionOf(std::optional<codec::Compression> asked) const;
  const AttachedTier* FindTierLocked(const Tier* tier) const;

  // Data-path helpers (block_cache.cpp).
  Block* LookupLocked(BlockId id) const;
  Result<void*> AcquireImpl(BlockId id, Stream stream, bool may_wait);
  void TouchLocked(Block* b, bool inserted);
  void PinnedHitLocked(Block* b, Stream stream);
  // Every alive block is on the GPU (resident or loading). REQUIRES: mutex_.
  bool AllOnGpuLocked() const { return cached_bytes_ >= registered_bytes_; }
  void HintLocked(Block* b, uint64_t when);
  Result<void*> ReturnPinned(Block* b, Stream stream);
  // Brings `b` (marked kLoading by the caller) to the GPU; called without
  // mutex_. Returns the load status.
  // `min_victim_next_use` (0: any): a victim's predicted next use may not
  // be earlier; when no victim qualifies the load gives way (kBusy, the
  // block stays absent) unless an acquire is waiting for it.
  Status Load(Block* b, uint64_t min_victim_next_use = 0);
  // Before a load from home: the copy into the block's mirror tier, if it
  // has one (see RegisterMirrored; home_mirror.cpp). Called without mutex_
  // by the thread that marked the block kLoading.
  void MirrorHome(Block* b);
  Result<void*> AllocateForBlock(uint64_t bytes);
  void AfterAccess(BlockId id, uint64_t bytes);
  struct PrefetchRequest;
  // Prefetch requests for the first `limit` absent blocks of `order`
  // (order[0] is the next acquire). order[0] may evict any block needed
  // after it (the second slot of a double buffer, so its copy overlaps the
  // block in use); each later one only a block
  // whose next use lies beyond its own and beyond the next use of every
  // block acquired before it (`touched_next_use` is the next use of the
  // block just acquired, 0 for none; a block touched in between comes back
  // about as far ahead as it last did): what demand eviction by next use
  // would pick at the block's own acquire. Earlier than that, a victim
  // would be a block demand eviction keeps, moved twice for nothing.
  // REQUIRES: mutex_; every id registered.
  std::vector<PrefetchRequest> PlanPrefetchesLocked(const std::vector<BlockId>& order,
                                                    size_t limit, uint64_t touched_next_use);
  void EnqueuePrefetches(std::vector<PrefetchRequest> requests);
  // The next use `b` is ranked by: the policy's when it keeps predictions,
  // else the engine's hint, the prefetch's, or the predictor's.
  uint64_t NextUseOfLocked(const Block* b) const;
  void PrefetchLoop();
  // The depth prefetches may run to after an acquire of a `bytes` block:
  // the predictor's Lookahead over the GPU room less that block, with the
  // link rate measured on the GPU tier's transfers. REQUIRES: mutex_.
  size_t LookaheadLocked(uint64_t bytes);
  // The "prefetch" object of StatsJson (cache_stats.cpp). REQUIRES: mutex_.
  void AppendPrefetchJson(JsonWriter* w) const;

  // A release, or an acquire waiting for a prefetch: bumps room_epoch_ and
  // wakes prefetches waiting for room, if any. REQUIRES: mutex_.
  void NotifyRoomLocked();

  // DRAM staging (dram_staging.cpp).
  // Wakes the staging thread after an access or an order hint. Cheap: a
  // counter and, only when the thread sleeps, a notify. REQUIRES: mutex_.
  void WakeDramStagingLocked();
  // The first of the predictor's next dram_prefetch_lookahead blocks (past
  // the GPU prefetch window, not in `tried`) worth staging, with a DRAM
  // extent reserved for it and its predicted use; null when none is (or
  // DRAM has no room it may take). REQUIRES: mutex_.
  Block* PlanDramStageLocked(const std::vector<BlockId>& tried, Extent* extent, uint64_t* use);
  // Reads `b`'s bytes from home into `extent` of the DRAM tier, chunk by
  // chunk through TransferEngine::ReadChunk (verified, re-read on failure).
  // `verify` (may be empty) holds the block's checksums; `fill` receives the
  // checksums of what was read. Called without mutex_.
  Status ReadHomeIntoDram(const Block* b, const Extent& extent,
                          const std::vector<uint32_t>& verify, std::vector<uint32_t>* fill);
  void DramStageLoop();

  // Eviction helpers (cache_eviction.cpp).
  bool UploadDoneLocked(const Block* b) const;
  // `allow_pending`: a block released on its acquiring stream whose work
  // has not settled, or whose prefetch upload is still running, counts as
  // evictable (freed in that stream's order).
  bool EvictableLocked(const Block* b, bool allow_pending) const;
  void PurgePendingLocked(Block* b);
  void PollFencesLocked();
  void FenceAllLocked();
  // Fences `stream`'s pending releases now (one event). Called by an
  // acquire that makes a device call anyway, so a block evicted later is
  // freed behind the event right after its last use rather than behind a
  // fence recorded at eviction time, which may also cover work enqueued
  // since (in a pipeline: the touch of the block just uploaded).
  void FenceStreamLocked(Stream stream);
  // The newest fence holding one of `b`'s pending releases; null when one
  // of them is not fenced yet.
  Event LastFenceOfLocked(const Block* b) const;
  void FenceLocked(Stream stream, std::vector<BlockId>* ids);
  // Device memory to give back once mutex_ is released, each in the order
  // of its stream.
  using DeviceFrees = std::vector<std::pair<void*, Stream>>;
  // Evicts one victim. False when none is evictable.
  // `min_next_use` (0: any): only a block predicted to be used no earlier.
  bool EvictOneLocked(DeviceFrees* frees, uint64_t* freed_bytes, uint64_t min_next_use = 0);
  // While next-use leads and at most kStreamRing residents are streamed
  // (loaded for their latest acquire; the rest were kept across one):
  // instead of Belady's `chosen`, the evictable streamed block acquired
  // longest ago, when it comes back before `chosen` by less than the
  // cache's block count (both are blocks a cycle streams, so no extra
  // miss). Its work ended long ago, so the copy into its memory runs while
  // the kept part of the stack computes, where Belady's choice, a block
  // used just now, would make the copy wait for that work. Null to keep
  // `chosen`. REQUIRES: mutex_.
  static constexpr uint64_t kStreamRing = 2;
  const Block* OlderStreamedVictimLocked(BlockId chosen,
                                         const std::function<bool(BlockId)>& evictable) const;
  // The cycle plan (runtime/cycle_plan.cpp). When the predictor knows the
  // order the acquires repeat in (AccessPredictor::RepeatingOrder) and one
  // period of it does not fit the GPU cache, a fixed part of the cycle is
  // kept for the whole cycle and the rest streams through a ring of one
  // block's room (two when less than half the cycle fits). The ring's
  // victim is the streamed block used longest ago, so its copy never waits
  // for work just enqueued on a block a kept one would have replaced, and
  // the kept part never rotates: each cycle moves what MIN moves (one ring
  // slot) or one block more (two, so copies overlap the kernels).
  // Recomputed at most once a period, and dropped when the predictor no
  // longer holds a cycle. REQUIRES: mutex_ for all three.
  void UpdateCyclePlanLocked();
  // The engine holds (acquired, not released) b's bytes / no longer; the
  // cycle plan sizes its ring slots to the most bytes held at once.
  void HoldLocked(Block* b);
  void UnholdLocked(Block* b);
  void ClearCyclePlanLocked();
  // The ring's victim: among resident, `evictable` blocks outside the kept
  // part that are not a prefetch still awaiting its acquire, the one used
  // longest ago; null when there is none.
  const Block* PlannedVictimLocked(const std::function<bool(BlockId)>& evictable) const;
  void EvictBlockLocked(Block* b, bool demote, DeviceFrees* frees);
  // Starts copying the block's device bytes to a new DRAM copy; the device
  // memory is then freed behind that copy. False when DRAM has no room.
  bool DemoteLocked(Block* b, void* device_ptr, Stream after, DeviceFrees* frees);
  // A DRAM extent, evicting DRAM copies the DRAM policy picks among those
  // no upload reads and (`min_victim_next_use` != 0) whose next use lies
  // beyond it or is unknown (`known_uses`, may be null: next uses that
  // override the estimate, e.g. positions in the predicted order).
  // kOutOfSpace when none qualifies.
  Result<Extent> AllocateDramLocked(
      uint64_t bytes, uint64_t min_victim_next_use = 0,
      const std::unordered_map<BlockId, uint64_t>* known_uses = nullptr);
  // When a DRAM copy of `b` is next read: now while the block is loading,
  // never while it is resident (its next use is served there), else its
  // hint, the use it was staged for, the predictor's distance, or the
  // estimate taken right after its last acquire.
  uint64_t DramNextUseLocked(const Block* b) const;
  void DropDramCopyLocked(Block* b);
  void FreeDevice(const DeviceFrees& frees);
  // Evicts until `b` fits in gpu_cache_bytes, then reserves its bytes; may
  // wait for fences (without the lock). kOutOfSpace when everything stays
  // acquired or the wait runs past acquire_wait_ms.
  // `min_victim_next_use` as for Load: kBusy, at once, when room could only
  // be made by evicting blocks needed sooner (unless an acquire waits for
  // `b`); while a qualifying block is still held it waits for it.
  Status MakeRoomAndReserve(Block* b, uint64_t min_victim_next_use = 0);

  std::shared_ptr<Device> device_;
  DeviceAllocator* allocator_;
  const RuntimeConfig config_;
  RuntimeStats stats_;
  int gpu_slot_ = -1;
  Tier* dram_ = nullptr;
  bool dram_pinned_ = false;
  std::unique_ptr<StagingPool> staging_;
  std::unique_ptr<TransferEngine> transfer_;
  Stream release_stream_ = nullptr;  // idle stream: frees on it are reusable at once

  mutable std::mutex mutex_;
  std::condition_variable load_cv_;  // a load finished (ok or not)
  // A release, or an acquire that waits for a prefetch: a prefetch waiting
  // for room without evicting blocks needed sooner looks again.
  std::condition_variable room_cv_;
  uint64_t room_epoch_ = 0;    // GUARDED_BY(mutex_); counts room_cv_'s notifications
  uint32_t room_waiters_ = 0;  // GUARDED_BY(mutex_); prefetches waiting on room_cv_
  std::vector<AttachedTier> tiers_;                     // GUARDED_BY(mutex_)
  std::deque<std::unique_ptr<Block>> blocks_;           // GUARDED_BY(mutex_), index = id
  std::unordered_map<std::string, BlockId> by_name_;    // GUARDED_BY(mutex_)
  struct Group {
    std::string name;
    std::vector<BlockId> members;
  };
  std::vector<Group> groups_;                           // GUARDED_BY(mutex_)
  std::unique_ptr<EvictionPolicy> gpu_policy_;          // GUARDED_BY(mutex_)
  std::unique_ptr<EvictionPolicy> dram_policy_;         // GUARDED_BY(mutex_)
  uint64_t cached_bytes_ = 0;                           // GUARDED_BY(mutex_)
  uint64_t registered_bytes_ = 0;                       // GUARDED_BY(mutex_); of alive blocks
  uint64_t clock_ = 0;                                  // GUARDED_BY(mutex_)
  BlockId last_acquired_ = UINT64_MAX;                  // GUARDED_BY(mutex_); spared as a victim
  std::vector<BlockId> plan_kept_;                      // GUARDED_BY(mutex_); the cycle plan's kept blocks
  uint64_t plan_ring_slots_ = 0;                        // GUARDED_BY(mutex_); 0: no plan
  uint64_t plan_period_ = 0;                            // GUARDED_BY(mutex_)
  uint64_t plan_slot_bytes_ = 0;                        // GUARDED_BY(mutex_); one ring slot
  uint64_t plan_clock_ = 0;                             // GUARDED_BY(mutex_); clock_ at the last update
  bool plan_checked_ = false;                           // GUARDED_BY(mutex_)
  uint64_t held_bytes_ = 0;                             // GUARDED_BY(mutex_); acquired, not released
  uint64_t held_peak_bytes_ = 0;                        // GUARDED_BY(mutex_); most of it since the last plan update
  struct Fence {
    Event event;
    std::vector<BlockId> blocks;
  };
  std::vector<std::pair<Stream, std::vector<BlockId>>> unfenced_;  // GUARDED_BY(mutex_)
  std::deque<Fence> fences_;                                      // GUARDED_BY(mutex_)
  AccessPredictor* predictor_ = nullptr;                          // GUARDED_BY(mutex_)
  std::unique_ptr<Prefetcher> learner_;  // the cache's own, unless replaced
  size_t lookahead_ = 0;                 // GUARDED_BY(mutex_); the last derived depth
  std::atomic<bool> has_predictor_{false};

  std::mutex prefetch_mutex_;
  std::condition_variable prefetch_cv_;
  struct PrefetchRequest {
    BlockId id;
    uint64_t requested_at;        // the logical clock when asked
    uint64_t next_use;            // predicted use (kNeverUsedAgain: unknown)
    uint64_t min_victim_next_use; // 0: may evict any victim
    bool from_predictor;          // planned from a predicted or hinted order
  };
  std::deque<PrefetchRequest> prefetch_queue_;  // GUARDED_BY(prefetch_mutex_)
  bool prefetch_busy_ = false;          // GUARDED_BY(prefetch_mutex_)
  bool stopping_ = false;               // GUARDED_BY(prefetch_mutex_)
  std::thread prefetch_thread_;

  // DRAM staging: its own thread, so its reads overlap the transfer
  // engine's uploads and never wait behind a GPU prefetch waiting for room.
  bool dram_staging_on_ = false;        // fixed at Create
  bool prefetch_off_ = false;           // fixed at Create: config prefetch == "off"
  uint64_t encoded_blocks_ = 0;         // GUARDED_BY(mutex_): alive blocks stored encoded
  uint64_t encoded_raw_bytes_ = 0;      // GUARDED_BY(mutex_): their decoded size
  uint64_t encoded_stored_bytes_ = 0;   // GUARDED_BY(mutex_): their encoded size
  uint64_t slow_homed_blocks_ = 0;      // GUARDED_BY(mutex_): alive blocks homed off-DMA
  std::condition_variable stage_cv_;    // with mutex_: work may be there
  std::condition_variable stage_done_cv_;  // with mutex_: a staging read ended or the thread idles
  uint64_t stage_epoch_ = 0;            // GUARDED_BY(mutex_); accesses since start
  uint64_t stage_seen_ = 0;             // GUARDED_BY(mutex_); the epoch last planned for
  uint64_t stage_order_cap_ = 0;        // GUARDED_BY(mutex_); reuse distance of the last access
  bool stage_waiting_ = false;          // GUARDED_BY(mutex_)
  bool stage_busy_ = false;             // GUARDED_BY(mutex_)
  bool stage_stopping_ = false;         // GUARDED_BY(mutex_)
  std::thread stage_thread_;
};

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_BLOCK_CACHE_H_
