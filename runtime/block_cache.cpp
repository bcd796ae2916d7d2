// BlockCache: the data path (acquire, release, loads, prefetch, hints).
#include "runtime/block_cache.h"

#include <algorithm>
#include <unordered_map>

#include "common/log.h"
#include "runtime/checksum.h"
#include "runtime/block_cache_internal.h"

namespace tiercache {

// Tells the GPU policy that `b` was used (or just arrived), then re-sends
// the engine's hint if it still lies ahead (an access consumes predictions).
// The logical clock counts acquires only: an insert (a miss's load or a
// prefetch) happens at the current time, so hinted distances ("used again
// in N acquires") stay exact.
void BlockCache::TouchLocked(Block* b, bool inserted) {
  if (inserted) {
    gpu_policy_->OnTick(clock_);
    gpu_policy_->OnInsert(b->id, b->bytes);
  } else {
    gpu_policy_->OnTick(++clock_);
    last_acquired_ = b->id;
    b->streamed = b->loaded_since_acquire;
    b->loaded_since_acquire = false;
    // Policies compare alternatives only while the cache is short of room.
    if (!AllOnGpuLocked()) gpu_policy_->OnRequest(b->id, b->bytes);
    gpu_policy_->OnAccess(b->id);
    b->reuse_distance = b->last_access == 0 ? 0 : clock_ - b->last_access;
    b->last_access = clock_;
  }
  if (b->hinted_next_use != kNeverUsedAgain) {
    if (b->hinted_next_use > clock_) {
      gpu_policy_->OnPrediction(b->id, b->hinted_next_use);
    } else if (!inserted) {
      b->hinted_next_use = kNeverUsedAgain;  // this was the hinted use
    }
  }
  if (!inserted) {
    b->prefetch_next_use = kNeverUsedAgain;  // the use it was prefetched for
  } else if (b->prefetch_next_use != kNeverUsedAgain &&
             (b->hinted_next_use <= clock_ || b->prefetch_next_use < b->hinted_next_use)) {
    // Sent even when already due: the policy then re-asks the predictor
    // rather than ranking the block farthest.
    gpu_policy_->OnPrediction(b->id, b->prefetch_next_use);
  }
}

void BlockCache::HoldLocked(Block* b) {
  ++b->held;
  held_bytes_ += b->bytes;
  held_peak_bytes_ = std::max(held_peak_bytes_, held_bytes_);
}

void BlockCache::UnholdLocked(Block* b) {
  --b->held;
  held_bytes_ -= b->bytes;
}

// A resident block was hit: count it and tell the policy. REQUIRES: mutex_.
void BlockCache::PinnedHitLocked(Block* b, Stream stream) {
  ++b->pins;
  HoldLocked(b);
  b->acquire_stream = stream;
  TouchLocked(b, false);
  stats_.Hit(gpu_slot_);
}

// Hands a pinned, resident block to `stream`: if its upload has not run
// yet, the stream waits on the upload's event (the host does not).
Result<void*> BlockCache::ReturnPinned(Block* b, Stream stream) {
  void* ptr = b->device_ptr;
  TransferJob* upload = b->upload.get();
  if (!upload->complete()) {
    upload->NoteWaiter(MonotonicNanoseconds());
    Status s = device_->StreamWaitEvent(stream, upload->done_event());
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      --b->pins;
      UnholdLocked(b);
      return s;
    }
  }
  return ptr;
}

Result<void*> BlockCache::Acquire(BlockId id, Stream stream) {
  return AcquireImpl(id, stream, /*may_wait=*/true);
}

Result<void*> BlockCache::TryAcquire(BlockId id, Stream stream) {
  return AcquireImpl(id, stream, /*may_wait=*/false);
}

Result<void*> BlockCache::AcquireImpl(BlockId id, Stream stream, bool may_wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  Block* b = LookupLocked(id);
  if (b == nullptr) return Status::NotFound("cache: no block " + std::to_string(id));
  const uint64_t bytes = b->bytes;
  if (b->gpu == Block::Gpu::kResident) {
    PinnedHitLocked(b, stream);
    if (!b->upload->complete()) FenceStreamLocked(stream);  // a device call follows anyway
    // When every block is on the GPU there is nothing to prefetch or to
    // learn for: the hit costs bookkeeping only.
    const bool learn = has_predictor_.load(std::memory_order_relaxed) && !AllOnGpuLocked();
    lock.unlock();
    Result<void*> ptr = ReturnPinned(b, stream);
    if (learn) AfterAccess(id, bytes);
    return ptr;
  }
  if (!may_wait) {
    const bool absent = b->gpu == Block::Gpu::kAbsent;  // read under the lock
    lock.unlock();
    if (absent) (void)Prefetch({id});
    return Status::Busy("cache: block " + std::to_string(id) + " is not on the GPU yet");
  }
  ++b->pins;  // held across the load so the block cannot be evicted under us
  HoldLocked(b);
  bool load = true;
  if (b->gpu == Block::Gpu::kLoading) {
    // A prefetch got there first. While an acquire waits, its load is a
    // demand one (it may evict whatever it must); one that gave way before
    // seeing the waiter leaves the block for this thread to load.
    ++b->demand_waiters;
    NotifyRoomLocked();
    load_cv_.wait(lock, [b] { return b->gpu != Block::Gpu::kLoading; });
    --b->demand_waiters;
    load = b->gpu == Block::Gpu::kAbsent && b->prefetch_gave_way;
    if (!load) stats_.Hit(gpu_slot_);  // a late hit
  }
  if (load) {
    stats_.Miss(gpu_slot_);
    b->gpu = Block::Gpu::kLoading;
    lock.unlock();
    (void)Load(b);
    lock.lock();
  }
  if (b->gpu != Block::Gpu::kResident) {
    --b->pins;
    UnholdLocked(b);
    return b->last_error.ok() ? Status::Internal("cache: load ended without a status")
                              : b->last_error;
  }
  TouchLocked(b, false);
  b->acquire_stream = stream;
  if (!b->upload->complete()) FenceStreamLocked(stream);
  lock.unlock();
  Result<void*> ptr = ReturnPinned(b, stream);
  if (has_predictor_.load(std::memory_order_relaxed)) AfterAccess(id, bytes);
  return ptr;
}

Result<void*> BlockCache::AllocateForBlock(uint64_t bytes) {
  // The allocator calls our pressure callback itself when its budget is
  // short; a failure here means nothing unpinned was left to give.
  Result<void*> ptr = allocator_->Allocate(bytes, transfer_->upload_stream());
  if (ptr.ok() || ptr.status().code() != ErrorCode::kOutOfMemory) return ptr;
  // Pins may have dropped since (fences complete): one more round.
  if (EvictUnpinned(bytes) > 0) ptr = allocator_->Allocate(bytes, transfer_->upload_stream());
  return ptr;
}

Status BlockCache::Load(Block* b, uint64_t min_victim_next_use) {
  Status status = MakeRoomAndReserve(b, min_victim_next_use);
  if (status.code() == ErrorCode::kBusy) {
    // A prefetch gave way: nothing was reserved or moved. Not a failure;
    // a later prefetch or the acquire itself brings the block.
    {
      std::lock_guard<std::mutex> lock(mutex_);
      b->gpu = Block::Gpu::kAbsent;
      b->prefetch_gave_way = true;
      b->prefetch_next_use = kNeverUsedAgain;
    }
    load_cv_.notify_all();
    return status;
  }
  void* ptr = nullptr;
  if (status.ok()) {
    Result<void*> allocated = AllocateForBlock(b->bytes);
    if (allocated.ok()) {
      ptr = *allocated;
    } else {
      status = allocated.status();
    }
  }
  std::shared_ptr<TransferJob> job;
  bool tried_home = false;
  if (status.ok()) MirrorHome(b);
  while (status.ok()) {
    HostLocation source;
    Event wait_event = nullptr;
    bool from_dram = false;
    const std::vector<uint32_t>* checksums = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (b->dram_valid && !tried_home) {
        from_dram = true;
        const AttachedTier* t = FindTierLocked(dram_);
        source = {dram_, b->dram_extent, t->direct, t->stats_slot};
        if (b->dram_job != nullptr && !b->dram_job->complete()) {
          wait_event = b->dram_job->done_event();  // a demotion still writing it
        }
        b->dram_readers.fetch_add(1, std::memory_order_acq_rel);
        stats_.Hit(source.stats_slot);
      } else {
        const AttachedTier* t = FindTierLocked(b->home);
        source = {b->home, b->home_extent, t->direct, t->stats_slot};
        if (dram_ != nullptr && b->home != dram_) stats_.Miss(FindTierLocked(dram_)->stats_slot);
        stats_.Hit(source.stats_slot);
      }
      if (config_.verify_checksums && !b->checksums.empty()) checksums = &b->checksums;
    }
    auto filled = std::make_shared<std::vector<uint32_t>>();
    const bool fill = config_.verify_checksums && checksums == nullptr && !from_dram;
    CompletionFn on_complete;
    if (from_dram) on_complete = [b](bool) { b->dram_readers.fetch_sub(1, std::memory_order_acq_rel); };
    if (b->encoded) {  // a DRAM copy holds the encoding too
      on_complete = [this, inner = std::move(on_complete), slot = source.stats_slot,
                     moved = source.extent.length, decoded = b->bytes,
                     start = MonotonicNanoseconds()](bool ok) {
        if (ok) stats_.EncodedUpload(slot, moved, decoded, MonotonicNanoseconds() - start);
        if (inner) inner(ok);
      };
      job = transfer_->UploadEncoded(source, ptr, b->bytes, wait_event, checksums,
                                     fill ? filled.get() : nullptr, std::move(on_complete));
    } else {
      job = transfer_->Upload(source, ptr, b->bytes, wait_event, checksums,
                              fill ? filled.get() : nullptr, std::move(on_complete));
    }
    status = job->WaitEnqueued();
    if (status.ok()) {
      if (fill && !filled->empty()) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (b->checksums.empty()) b->checksums = *filled;
      }
      break;
    }
    if (from_dram) {
      // The copy is suspect: drop it and go back to the block's home.
      TC_LOG_WARN("block %s: DRAM copy failed (%s); refetching from %s", b->name.c_str(),
                  status.ToString().c_str(), b->home->name().c_str());
      std::lock_guard<std::mutex> lock(mutex_);
      if (b->dram_readers.load(std::memory_order_acquire) == 0) DropDramCopyLocked(b);
      tried_home = true;
      status = Status::Ok();
      continue;
    }
    break;
  }
  if (!status.ok() && ptr != nullptr) {
    // Copies already enqueued may still write it: free in the upload
    // stream's order.
    (void)allocator_->Free(ptr, transfer_->upload_stream());
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status.ok()) {
      b->device_ptr = ptr;
      b->upload = std::move(job);
      b->gpu = Block::Gpu::kResident;
      b->last_error = Status::Ok();
      b->prefetch_gave_way = false;
      b->loaded_since_acquire = true;
      TouchLocked(b, true);
    } else {
      b->gpu = Block::Gpu::kAbsent;
      if (b->reserved) cached_bytes_ -= b->bytes;
      b->reserved = false;
      b->last_error = status;
      b->prefetch_gave_way = false;
      b->prefetch_next_use = kNeverUsedAgain;
      TC_LOG_WARN("block %s: load failed: %s", b->name.c_str(), status.ToString().c_str());
    }
  }
  load_cv_.notify_all();
  return status;
}

Status BlockCache::Release(BlockId id, Stream stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  Block* b = LookupLocked(id);
  if (b == nullptr) return Status::NotFound("cache: no block " + std::to_string(id));
  if (b->held == 0) {
    return Status::InvalidArgument("cache: release of block " + std::to_string(id) +
                                   " that is not acquired");
  }
  // Work on the acquiring stream is ordered after the upload; a release on
  // another stream is not, so it cannot take the fast eviction path.
  if (b->pins == b->held) {  // no release pending yet
    b->release_stream = stream;
    b->release_multi = stream != b->acquire_stream;
  } else if (b->release_stream != stream) {
    b->release_multi = true;
  }
  UnholdLocked(b);  // the pin itself stays until the stream's work is fenced
  NotifyRoomLocked();
  auto it = std::find_if(unfenced_.begin(), unfenced_.end(),
                         [stream](const auto& entry) { return entry.first == stream; });
  if (it == unfenced_.end()) {
    unfenced_.emplace_back(stream, std::vector<BlockId>{});
    it = unfenced_.end() - 1;
  }
  it->second.push_back(id);
  // A block the cycle plan streams is the ring's next victim: fence its
  // release now, so the copy that takes its memory waits for its own work
  // only, not for the kept blocks' work the engine enqueues before that
  // copy is planned (the host runs ahead of its stream).
  if (b->held == 0 && plan_ring_slots_ != 0 && !b->plan_kept) {
    FenceStreamLocked(stream);
    return Status::Ok();
  }
  // Bound the bookkeeping when nothing asks for room for a long time: one
  // event per 1024 releases keeps the hot path free of device calls.
  if (it->second.size() >= 1024) {
    PollFencesLocked();
    FenceAllLocked();
  }
  return Status::Ok();
}

Status BlockCache::Prefetch(const std::vector<BlockId>& ids) {
  std::vector<PrefetchRequest> requests;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (BlockId id : ids) {
      if (LookupLocked(id) == nullptr) {
        return Status::NotFound("cache: no block " + std::to_string(id));
      }
    }
    for (BlockId id : ids) {
      // The engine asked for it: only a hint of its use bounds what it may
      // evict (do no harm); without one, anything the policy offers.
      const uint64_t hinted = blocks_[id]->hinted_next_use;
      const bool ahead = hinted != kNeverUsedAgain && hinted > clock_;
      requests.push_back({id, clock_, ahead ? hinted : kNeverUsedAgain, ahead ? hinted + 1 : 0, false});
    }
  }
  EnqueuePrefetches(std::move(requests));
  return Status::Ok();
}

void BlockCache::EnqueuePrefetches(std::vector<PrefetchRequest> requests) {
  if (requests.empty()) return;
  {
    std::lock_guard<std::mutex> lock(prefetch_mutex_);
    for (const PrefetchRequest& r : requests) prefetch_queue_.push_back(r);
  }
  prefetch_cv_.notify_one();
}

std::vector<BlockCache::PrefetchRequest> BlockCache::PlanPrefetchesLocked(
    const std::vector<BlockId>& order, size_t limit, uint64_t touched_next_use) {
  std::vector<PrefetchRequest> requests;
  // Demand eviction by next use evicts, at a block's acquire, the resident
  // block used farthest ahead then, and every block acquired before it is
  // among those by then: so a victim chosen now must lie beyond all of
  // them, else it is one demand eviction keeps, evicted and fetched again.
  uint64_t horizon = touched_next_use == kNeverUsedAgain ? kNeverUsedAgain
                     : touched_next_use > 0             ? touched_next_use - 1
                                                        : clock_;
  for (size_t i = 0; i < order.size() && requests.size() < limit; ++i) {
    const Block* b = blocks_[order[i]].get();
    const uint64_t use = clock_ + i + 1;
    if (b->gpu == Block::Gpu::kAbsent && b->alive) {
      // The very next block, when absent and homed in pinned DRAM, is the
      // second buffer of a double buffer: it may evict any block needed
      // after it (what demand MIN evicts at its acquire, a moment earlier),
      // so its copy overlaps the work on the block in use; a block evicted
      // for it early costs one more DMA a cycle. Blocks from slow homes do
      // not: their victims would cost a home read or a DRAM copy each, and
      // DRAM staging is what takes their reads off the load path. Later
      // blocks take the demand-eviction bound.
      const bool double_buffer = i == 0 && b->home_direct;
      const uint64_t bound = double_buffer ? use : std::max(use, horizon);
      requests.push_back({b->id, clock_, use, bound == kNeverUsedAgain ? bound : bound + 1, true});
    }
    // After this use the block comes back about as far ahead as it last did
    // (never acquired: unknown, so nothing may be evicted past it).
    const uint64_t back = b->last_access == 0 || use - b->last_access > kNeverUsedAgain - use
                              ? kNeverUsedAgain
                              : use + (use - b->last_access);
    horizon = std::max(horizon, back);
  }
  return requests;
}

uint64_t BlockCache::NextUseOfLocked(const Block* b) const {
  if (std::optional<uint64_t> ranked = gpu_policy_->PredictedNextUse(b->id)) return *ranked;
  uint64_t next = kNeverUsedAgain;
  if (b->hinted_next_use > clock_) next = b->hinted_next_use;
  if (b->prefetch_next_use > clock_) next = std::min(next, b->prefetch_next_use);
  if (next == kNeverUsedAgain && predictor_ != nullptr) {
    const uint64_t distance = predictor_->PredictDistance(b->id);
    if (distance != kNeverUsedAgain) next = clock_ + distance;
  }
  return next;
}

void BlockCache::PrefetchLoop() {
  std::unique_lock<std::mutex> queue_lock(prefetch_mutex_);
  while (true) {
    prefetch_cv_.wait(queue_lock, [this] { return stopping_ || !prefetch_queue_.empty(); });
    if (stopping_) return;
    const PrefetchRequest request = prefetch_queue_.front();
    prefetch_queue_.pop_front();
    prefetch_busy_ = true;
    queue_lock.unlock();
    Block* b = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      b = LookupLocked(request.id);
      // A block acquired since the request needs no prefetch any more: it
      // was fetched on demand (and may have been evicted again since).
      if (b != nullptr && b->gpu == Block::Gpu::kAbsent && b->last_access <= request.requested_at) {
        b->gpu = Block::Gpu::kLoading;
        b->prefetch_next_use = request.next_use;
      } else {
        b = nullptr;  // gone, resident, loading or stale
      }
    }
    if (b != nullptr) {
      const uint64_t issued = MonotonicNanoseconds();
      if (Load(b, request.min_victim_next_use).ok() && request.from_predictor) {
        std::lock_guard<std::mutex> lock(mutex_);
        // Not when the engine acquired it while it loaded: that acquire
        // has passed, and a flag set now would mark the block as still
        // awaiting its first acquire until the next one.
        if (b->last_access <= request.requested_at) b->prefetched = true;
        if (predictor_ != nullptr) predictor_->OnPrefetchIssued(b->id, b->bytes, issued);
      }
    }
    queue_lock.lock();
    prefetch_busy_ = false;
    if (prefetch_queue_.empty()) prefetch_cv_.notify_all();
  }
}

void BlockCache::AfterAccess(BlockId id, uint64_t bytes) {
  std::vector<PrefetchRequest> requests;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (predictor_ == nullptr) return;
    Block* b = LookupLocked(id);
    const uint64_t now = MonotonicNanoseconds();
    if (b != nullptr && b->prefetched) {
      // The first acquire since its prefetch: on time when its copy had run.
      b->prefetched = false;
      if (b->upload != nullptr && b->upload->complete()) {
        predictor_->OnPrefetchArrived(id, std::min(b->upload->complete_ns(), now));
      }
    }
    predictor_->OnAccess(id, bytes, now);
    if (b != nullptr) stage_order_cap_ = b->reuse_distance;
    WakeDramStagingLocked();
    uint64_t touched_next_use = kNeverUsedAgain;
    if (b != nullptr && b->gpu == Block::Gpu::kResident) {
      const uint64_t distance = predictor_->PredictDistance(id);
      touched_next_use = distance == kNeverUsedAgain ? kNeverUsedAgain : clock_ + distance;
      gpu_policy_->OnPrediction(id, touched_next_use);
      b->predicted_next_use = touched_next_use;
    }
    // Nothing to bring when every block is on the GPU (resident or loading):
    // the hot path of a model that fits asks the predictor nothing more.
    if (prefetch_off_ || AllOnGpuLocked()) return;
    const size_t lookahead = LookaheadLocked(bytes);
    if (lookahead == 0) return;
    // Ask for more than the depth: blocks already resident (hot experts, the
    // part of a layer stack that stays) fill the head of the predicted list
    // and are skipped; the depth counts the blocks to bring.
    const size_t horizon = std::min<size_t>(4 * lookahead, 256);
    std::vector<BlockId> order;
    for (BlockId candidate : predictor_->PredictNext(horizon)) {
      if (LookupLocked(candidate) == nullptr) break;  // the order past it is unknown
      order.push_back(candidate);
    }
    // A data-dependent order (MoE routing) names mostly blocks already
    // here: add the likeliest absent ones the coming accesses may use. They
    // come after the sure ones, so each may evict only blocks needed after
    // all of those.
    predictor_->AppendCandidates(horizon, lookahead, [this](BlockId id) {
      const Block* c = LookupLocked(id);
      return c != nullptr && c->gpu == Block::Gpu::kAbsent;
    }, &order);
    requests = PlanPrefetchesLocked(order, lookahead, touched_next_use);
  }
  EnqueuePrefetches(std::move(requests));
}

size_t BlockCache::LookaheadLocked(uint64_t bytes) {
  const uint64_t capacity = gpu_capacity();
  const uint64_t room = capacity > bytes ? capacity - bytes : 0;
  size_t depth = predictor_->Lookahead(room, stats_.Bandwidth(gpu_slot_));
  if (config_.prefetch_lookahead > 0) depth = std::min(depth, static_cast<size_t>(config_.prefetch_lookahead));
  lookahead_ = depth;
  return depth;
}

size_t BlockCache::CurrentLookahead() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lookahead_;
}

Result<std::vector<void*>> BlockCache::AcquireGroup(GroupId group, Stream stream) {
  TC_ASSIGN_OR_RETURN(std::vector<BlockId> members, GroupMembers(group));
  std::vector<void*> pointers;
  for (BlockId id : members) {
    Result<void*> ptr = Acquire(id, stream);
    if (!ptr.ok()) {
      for (size_t i = 0; i < pointers.size(); ++i) (void)Release(members[i], stream);
      return ptr.status();
    }
    pointers.push_back(*ptr);
  }
  return pointers;
}

Status BlockCache::ReleaseGroup(GroupId group, Stream stream) {
  TC_ASSIGN_OR_RETURN(std::vector<BlockId> members, GroupMembers(group));
  Status first;
  for (BlockId id : members) {
    Status s = Release(id, stream);
    if (first.ok()) first = s;
  }
  return first;
}

void BlockCache::HintLocked(Block* b, uint64_t when) {
  b->hinted_next_use = when;
  if (b->gpu == Block::Gpu::kResident) gpu_policy_->OnPrediction(b->id, when);
  if (b->dram_valid) dram_policy_->OnPrediction(b->id, when);
}

Status BlockCache::HintNextUse(BlockId id, uint64_t accesses_from_now) {
  std::lock_guard<std::mutex> lock(mutex_);
  Block* b = LookupLocked(id);
  if (b == nullptr) return Status::NotFound("cache: no block " + std::to_string(id));
  HintLocked(b, accesses_from_now == kNeverUsedAgain ? kNeverUsedAgain
                                                     : clock_ + accesses_from_now);
  return Status::Ok();
}

Status BlockCache::HintOrder(const std::vector<BlockId>& next) {
  std::vector<PrefetchRequest> requests;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (BlockId id : next) {
      if (LookupLocked(id) == nullptr) {
        return Status::NotFound("cache: no block " + std::to_string(id));
      }
    }
    for (size_t i = next.size(); i-- > 0;) {  // the first mention of a block wins
      HintLocked(blocks_[next[i]].get(), clock_ + i + 1);
    }
    if (predictor_ != nullptr) {
      predictor_->Hint(next);
      WakeDramStagingLocked();
    }
    if (!prefetch_off_) {
      // No acquire is in flight here: the horizon starts at now. Before any
      // acquire has sized the lookahead, the cap (or two blocks) bounds it.
      const size_t depth = lookahead_ != 0            ? lookahead_
                           : config_.prefetch_lookahead > 0 ? static_cast<size_t>(config_.prefetch_lookahead)
                                                             : 2;
      requests = PlanPrefetchesLocked(next, depth, /*touched_next_use=*/0);
    }
  }
  EnqueuePrefetches(std::move(requests));
  return Status::Ok();
}

void BlockCache::NotifyRoomLocked() {
  ++room_epoch_;
  // A release is on the hot path: no notify when no prefetch waits.
  if (room_waiters_ > 0) room_cv_.notify_all();
}

void BlockCache::SetPredictor(AccessPredictor* predictor) {
  std::unique_ptr<Prefetcher> replaced;
  std::lock_guard<std::mutex> lock(mutex_);
  predictor_ = predictor;
  if (predictor != learner_.get()) replaced = std::move(learner_);  // freed after the lock
  has_predictor_.store(predictor != nullptr, std::memory_order_relaxed);
}

Status BlockCache::Drain() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    stage_done_cv_.wait(lock, [this] {
      return stage_stopping_ || (!stage_busy_ && stage_seen_ == stage_epoch_);
    });
  }
  {
    std::unique_lock<std::mutex> lock(prefetch_mutex_);
    prefetch_cv_.wait(lock, [this] { return stopping_ || (prefetch_queue_.empty() && !prefetch_busy_); });
  }
  TC_RETURN_IF_ERROR(transfer_->Drain());
  // Settle released pins: fence every stream and wait for the fences.
  std::vector<Event> waits;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    FenceAllLocked();
    for (const Fence& f : fences_) waits.push_back(f.event);
  }
  for (Event e : waits) (void)device_->EventSynchronize(e);
  std::lock_guard<std::mutex> lock(mutex_);
  PollFencesLocked();
  return Status::Ok();
}

}  // namespace tiercache
