// BlockCache: pins and fences, eviction, demotion to DRAM, the allocator's
// pressure callback, and the stats export.
#include <algorithm>
#include <chrono>
#include <thread>

#include "common/log.h"
#include "runtime/block_cache.h"
#include "runtime/block_cache_internal.h"

namespace tiercache {

// The upload must have run: its event has fired (its completion callback
// may lag a little behind the event).
bool BlockCache::UploadDoneLocked(const Block* b) const {
  if (b->upload == nullptr) return false;
  if (b->upload->complete()) return true;
  Result<bool> fired = device_->EventQuery(b->upload->done_event());
  return fired.ok() && *fired;
}

bool BlockCache::EvictableLocked(const Block* b, bool allow_pending) const {
  if (!b->alive || b->gpu != Block::Gpu::kResident || b->held > 0) return false;
  // Released on one stream but not settled: its memory can be freed in that
  // stream's order (which follows the upload), so the policy's choice need
  // not wait for the fence. An unacquired block still uploading is freed in
  // the upload stream's order.
  if (b->pins > 0) return allow_pending && !b->release_multi;
  return allow_pending || UploadDoneLocked(b);
}

// Forgets the block's unsettled releases (it is being evicted in their
// stream's order). REQUIRES: held == 0.
void BlockCache::PurgePendingLocked(Block* b) {
  for (auto& [stream, ids] : unfenced_) ids.erase(std::remove(ids.begin(), ids.end(), b->id), ids.end());
  for (Fence& f : fences_) {
    f.blocks.erase(std::remove(f.blocks.begin(), f.blocks.end(), b->id), f.blocks.end());
  }
  b->pins = 0;
}

// One event per stream with pending releases: once it has run, so has the
// work the engine enqueued before each release.
void BlockCache::FenceAllLocked() {
  for (auto& [stream, ids] : unfenced_) FenceLocked(stream, &ids);
  unfenced_.clear();
}

void BlockCache::FenceStreamLocked(Stream stream) {
  auto it = std::find_if(unfenced_.begin(), unfenced_.end(),
                         [stream](const auto& entry) { return entry.first == stream; });
  if (it == unfenced_.end()) return;
  FenceLocked(stream, &it->second);
  unfenced_.erase(it);
}

void BlockCache::FenceLocked(Stream stream, std::vector<BlockId>* ids) {
  if (ids->empty()) return;
  Result<Event> event = transfer_->events().Get();
  Status s = event.ok() ? device_->RecordEvent(*event, stream) : event.status();
  if (!s.ok()) {
    // A stream the engine destroyed has drained: its pins can go now.
    if (event.ok()) transfer_->events().Put(*event);
    for (BlockId id : *ids) --blocks_[id]->pins;
  } else {
    fences_.push_back({*event, std::move(*ids)});
  }
  ids->clear();
}

Event BlockCache::LastFenceOfLocked(const Block* b) const {
  for (const auto& [stream, ids] : unfenced_) {
    if (std::find(ids.begin(), ids.end(), b->id) != ids.end()) return nullptr;
  }
  for (auto it = fences_.rbegin(); it != fences_.rend(); ++it) {
    if (std::find(it->blocks.begin(), it->blocks.end(), b->id) != it->blocks.end()) {
      return it->event;
    }
  }
  return nullptr;
}

void BlockCache::PollFencesLocked() {
  // Fences complete in any order across streams; check them all.
  for (auto it = fences_.begin(); it != fences_.end();) {
    Result<bool> done = device_->EventQuery(it->event);
    if (done.ok() && !*done) {
      ++it;
      continue;
    }
    for (BlockId id : it->blocks) --blocks_[id]->pins;
    transfer_->events().Put(it->event);
    it = fences_.erase(it);
  }
}

const BlockCache::Block* BlockCache::OlderStreamedVictimLocked(
    BlockId chosen, const std::function<bool(BlockId)>& evictable) const {
  if (predictor_ == nullptr || gpu_policy_->active() != "next-use") return nullptr;
  const Block* pick = blocks_[chosen].get();
  const uint64_t pick_next = NextUseOfLocked(pick);
  if (pick_next == kNeverUsedAgain) return nullptr;
  const Block* oldest = nullptr;
  uint64_t resident = 0, streamed = 0;
  for (const auto& b : blocks_) {
    if (!b->alive || b->gpu != Block::Gpu::kResident) continue;
    ++resident;
    if (!b->streamed) continue;
    ++streamed;
    // Only blocks that come back by DMA from pinned DRAM: another victim
    // from a slow home would cost a home read or a DRAM copy.
    if (b.get() == pick || !evictable(b->id) || !b->home_direct) continue;
    if (oldest == nullptr || b->last_access < oldest->last_access) oldest = b.get();
  }
  // Only once the cache has settled into kept blocks and a small ring
  // streaming through: while most residents were loaded for their last
  // use (a cache still learning, or one a cycle thrashes), Belady decides.
  if (oldest == nullptr || streamed > kStreamRing || oldest->last_access >= pick->last_access) return nullptr;
  const uint64_t oldest_next = NextUseOfLocked(oldest);
  if (oldest_next == kNeverUsedAgain || oldest_next > pick_next || pick_next - oldest_next >= resident) {
    return nullptr;
  }
  return oldest;
}

bool BlockCache::EvictOneLocked(DeviceFrees* frees, uint64_t* freed_bytes,
                                uint64_t min_next_use) {
  bool spare_last = true;
  auto evictable = [this, min_next_use, &spare_last](BlockId id) {
    const Block* b = id < blocks_.size() ? blocks_[id].get() : nullptr;
    if (b == nullptr || !EvictableLocked(b, /*allow_pending=*/true)) return false;
    if (min_next_use != 0 && NextUseOfLocked(b) < min_next_use) return false;
    // The block acquired last, while its work is still pending, is spared
    // when another victim will do: an engine's host runs ahead of its
    // stream, and a copy into memory freed behind the work just enqueued
    // would wait for that work and then hold up the next, serialising copy
    // and compute. Sparing it makes the ring two deep (the second slot of a
    // double buffer) at most one block a cycle dearer than MIN.
    return !(spare_last && id == last_acquired_ && b->pins > 0);
  };
  PollFencesLocked();
  UpdateCyclePlanLocked();
  std::optional<BlockId> victim;
  if (plan_ring_slots_ != 0) {
    // The ring's victim is the streamed block used longest ago, not the
    // one just acquired: nothing to spare.
    spare_last = false;
    if (const Block* planned = PlannedVictimLocked(evictable)) {
      victim = planned->id;
    } else if (min_next_use != 0) {
      // A prefetch waits for the ring rather than take a kept block; an
      // acquire takes whatever Belady's rule gives (the plan heals: that
      // block is kept again when it is next loaded).
      return false;
    }
    spare_last = true;
  }
  if (!victim) {
    victim = gpu_policy_->ChooseVictim(evictable);
    if (!victim) {
      spare_last = false;
      victim = gpu_policy_->ChooseVictim(evictable);
    }
    if (!victim && !unfenced_.empty()) {
      FenceAllLocked();
      PollFencesLocked();
      victim = gpu_policy_->ChooseVictim(evictable);
    }
    if (!victim || !evictable(*victim)) return false;
    if (const Block* older = OlderStreamedVictimLocked(*victim, evictable)) victim = older->id;
  }
  Block* b = blocks_[*victim].get();
  *freed_bytes += b->bytes;
  EvictBlockLocked(b, config_.demote_on_evict, frees);
  return true;
}

void BlockCache::EvictBlockLocked(Block* b, bool demote, DeviceFrees* frees) {
  gpu_policy_->OnErase(b->id);
  stats_.Eviction(gpu_slot_);
  cached_bytes_ -= b->bytes;
  b->reserved = false;
  void* ptr = b->device_ptr;
  // An upload still running writes the memory: free behind it.
  const bool upload_done = b->upload == nullptr || UploadDoneLocked(b);
  // Memory still read by work on the stream it was released on is freed,
  // and demoted, in that stream's order.
  Stream after = upload_done ? release_stream_ : transfer_->upload_stream();
  if (b->pins > 0) {
    // Behind the fence of its last release when there is one: the idle
    // release stream waits for exactly that. Else in the order of the
    // stream it was released on, after everything enqueued there so far.
    Event fence = LastFenceOfLocked(b);
    if (fence != nullptr && device_->StreamWaitEvent(release_stream_, fence).ok()) {
      after = release_stream_;
    } else {
      after = device_->IsStreamLive(b->release_stream) ? b->release_stream : release_stream_;
    }
    PurgePendingLocked(b);
  }
  b->device_ptr = nullptr;
  b->upload.reset();
  b->gpu = Block::Gpu::kAbsent;
  const AttachedTier* home = FindTierLocked(b->home);
  // Demote only what is slow to refetch: a pinned DRAM home is already as
  // close as a DRAM copy would be.
  if (demote && upload_done && dram_ != nullptr && dram_pinned_ && b->home != dram_ &&
      !home->direct && !b->dram_valid && DemoteLocked(b, ptr, after, frees)) {
    return;
  }
  frees->emplace_back(ptr, after);
}

Result<Extent> BlockCache::AllocateDramLocked(
    uint64_t bytes, uint64_t min_victim_next_use,
    const std::unordered_map<BlockId, uint64_t>* known_uses) {
  while (true) {
    Result<Extent> extent = dram_->Allocate(bytes);
    if (extent.ok() || extent.status().code() != ErrorCode::kOutOfSpace) return extent;
    std::optional<BlockId> victim = dram_policy_->ChooseVictim([&](BlockId id) {
      const Block* b = id < blocks_.size() ? blocks_[id].get() : nullptr;
      if (b == nullptr || !b->dram_valid || (b->dram_job != nullptr && !b->dram_job->complete()) ||
          b->dram_readers.load(std::memory_order_acquire) != 0) {
        return false;
      }
      if (min_victim_next_use == 0) return true;
      // A copy needed sooner than the block taking its room would only be
      // read from its slow home again before that block is used.
      uint64_t next = DramNextUseLocked(b);
      if (known_uses != nullptr && b->gpu == Block::Gpu::kAbsent) {
        if (auto it = known_uses->find(id); it != known_uses->end()) next = std::min(next, it->second);
      }
      return next == kNeverUsedAgain || next > min_victim_next_use;
    });
    if (!victim) return extent;
    DropDramCopyLocked(blocks_[*victim].get());
    stats_.Eviction(FindTierLocked(dram_)->stats_slot);
  }
}

uint64_t BlockCache::DramNextUseLocked(const Block* b) const {
  // A load about to read the copy (it makes room on the GPU first, which
  // may demote another block into DRAM): needed now.
  if (b->gpu == Block::Gpu::kLoading) return clock_;
  if (b->gpu == Block::Gpu::kResident) return kNeverUsedAgain;
  uint64_t next = kNeverUsedAgain;
  if (b->hinted_next_use != kNeverUsedAgain && b->hinted_next_use > clock_) {
    next = b->hinted_next_use;
  }
  if (b->dram_staged_use != kNeverUsedAgain && b->dram_staged_use > clock_) {
    next = std::min(next, b->dram_staged_use);
  }
  if (next == kNeverUsedAgain && predictor_ != nullptr) {
    const uint64_t distance = predictor_->PredictDistance(b->id);
    if (distance != kNeverUsedAgain) next = clock_ + distance;
  }
  if (next == kNeverUsedAgain && b->predicted_next_use != kNeverUsedAgain &&
      b->predicted_next_use > clock_) {
    next = b->predicted_next_use;
  }
  return next;
}

bool BlockCache::DemoteLocked(Block* b, void* device_ptr, Stream after, DeviceFrees* frees) {
  // Not at the cost of a copy needed sooner (a staged one, typically): the
  // block is then simply dropped from the GPU. REQUIRES: b->gpu is kAbsent.
  // An encoded block is not demoted: its DRAM copy must hold the encoding
  // (what uploads decode), and the GPU holds only the decoded bytes. Its
  // home (or the DRAM staging, from a slow home) provides it again.
  if (b->encoded) return false;
  const uint64_t next_use = DramNextUseLocked(b);
  Result<Extent> extent = AllocateDramLocked(b->bytes, next_use == 0 ? 1 : next_use);
  if (!extent.ok()) return false;
  const AttachedTier* dram = FindTierLocked(dram_);
  HostLocation target{dram_, *extent, dram->direct, dram->stats_slot};
  // The copy runs on the download stream, alongside uploads, after the
  // work on `after` that may still read the block.
  std::shared_ptr<TransferJob> job =
      transfer_->Download(device_ptr, b->bytes, target, after, nullptr);
  if (job->enqueued() && !job->status().ok()) {
    (void)dram_->Free(*extent);
    return false;
  }
  b->dram_valid = true;
  b->dram_extent = *extent;
  b->dram_job = std::move(job);
  dram_policy_->OnTick(clock_);
  dram_policy_->OnInsert(b->id, b->bytes);
  // Freed in the download stream's order: after the copy has read it.
  frees->emplace_back(device_ptr, transfer_->download_stream());
  return true;
}

void BlockCache::DropDramCopyLocked(Block* b) {
  if (!b->dram_valid) return;
  dram_policy_->OnErase(b->id);
  (void)dram_->Free(b->dram_extent);
  b->dram_valid = false;
  b->dram_staged_use = kNeverUsedAgain;
  b->dram_job.reset();
}

void BlockCache::FreeDevice(const DeviceFrees& frees) {
  for (const auto& [ptr, stream] : frees) {
    Status s = allocator_->Free(ptr, stream);
    if (!s.ok()) TC_LOG_ERROR("cache: freeing device memory failed: %s", s.ToString().c_str());
  }
}

uint64_t BlockCache::EvictUnpinned(uint64_t bytes_needed) {
  DeviceFrees frees;
  uint64_t freed = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    while (freed < bytes_needed && EvictOneLocked(&frees, &freed)) {
    }
  }
  FreeDevice(frees);
  return freed;
}

Status BlockCache::Evict(BlockId id) {
  DeviceFrees frees;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Block* b = LookupLocked(id);
    if (b == nullptr) return Status::NotFound("cache: no block " + std::to_string(id));
    if (b->gpu == Block::Gpu::kAbsent) return Status::Ok();
    FenceAllLocked();
    PollFencesLocked();
    if (!EvictableLocked(b, /*allow_pending=*/false)) {
      return Status::Busy("cache: block " + b->name + " is pinned or still loading");
    }
    EvictBlockLocked(b, config_.demote_on_evict, &frees);
  }
  FreeDevice(frees);
  return Status::Ok();
}

Status BlockCache::MakeRoomAndReserve(Block* b, uint64_t min_victim_next_use) {
  const uint64_t cap = config_.gpu_cache_bytes;
  if (cap != 0 && b->bytes > cap) {
    return Status::OutOfSpace("cache: block " + b->name + " is larger than gpu_cache_bytes");
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.acquire_wait_ms);
  auto backoff = std::chrono::microseconds(20);
  while (true) {
    DeviceFrees frees;
    bool can_progress = false;
    bool give_way = false;
    uint64_t bound = 0;
    uint64_t epoch = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      epoch = room_epoch_;
      // An acquire waiting for `b` makes this a demand load.
      bound = b->demand_waiters > 0 ? 0 : min_victim_next_use;
      uint64_t freed = 0;
      while (cap != 0 && cached_bytes_ + b->bytes > cap && EvictOneLocked(&frees, &freed, bound)) {
      }
      if (cap == 0 || cached_bytes_ + b->bytes <= cap) {
        cached_bytes_ += b->bytes;  // reserved: other loaders see it at once
        b->reserved = true;
      } else {
        FenceAllLocked();
        // Unsettled releases, running uploads and other loads all end by
        // themselves; blocks the engine still holds do not.
        can_progress = !fences_.empty();
        for (size_t i = 0; !can_progress && i < blocks_.size(); ++i) {
          const Block* other = blocks_[i].get();
          can_progress = other != b && other->alive &&
                         (other->gpu == Block::Gpu::kLoading ||
                          (other->gpu == Block::Gpu::kResident && other->held == 0));
        }
        if (bound != 0) {
          // Worth waiting only for a block it may evict that the engine
          // still holds (typically the one it is using now, whose release
          // comes before the acquire this prefetch anticipates).
          bool held_victim = false;
          for (size_t i = 0; !held_victim && i < blocks_.size(); ++i) {
            const Block* other = blocks_[i].get();
            held_victim = other != b && other->alive && other->gpu == Block::Gpu::kResident &&
                          !EvictableLocked(other, /*allow_pending=*/true) &&
                          NextUseOfLocked(other) >= bound;
          }
          give_way = !held_victim;
          can_progress = held_victim;
        }
      }
    }
    FreeDevice(frees);
    if (b->reserved) return Status::Ok();
    if (give_way) {
      return Status::Busy("cache: prefetch of block " + b->name +
                          " would evict blocks needed sooner");
    }
    if (!can_progress) {
      return Status::OutOfSpace("cache: gpu_cache_bytes is full of acquired blocks");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      if (bound != 0) return Status::Busy("cache: prefetch of block " + b->name + " gave way");
      return Status::OutOfSpace("cache: timed out waiting for cached blocks to be released");
    }
    if (bound != 0) {
      // A prefetch waiting for the engine's release (or for its acquire,
      // which makes this a demand load): both notify room_cv_. Not a stall
      // of the engine, so not counted as one.
      std::unique_lock<std::mutex> lock(mutex_);
      ++room_waiters_;
      room_cv_.wait_for(lock, backoff, [this, epoch] { return room_epoch_ != epoch; });
      --room_waiters_;
      backoff = std::min(backoff * 2, std::chrono::microseconds(1000));
      continue;
    }
    // Back-pressure: every cached block is in use by work still running.
    // Poll (fences are checked with EventQuery each round) rather than wait
    // on one event, so whichever block frees first is taken.
    const uint64_t start = MonotonicNanoseconds();
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::microseconds(1000));
    stats_.Stall(gpu_slot_, MonotonicNanoseconds() - start);
  }
}

}  // namespace tiercache
