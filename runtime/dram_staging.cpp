// BlockCache: DRAM staging, reading the predicted next slow-homed blocks
// (NVMe, PMEM) into verified DRAM copies ahead of use on its own thread.
#include "runtime/block_cache.h"

#include <algorithm>
#include <unordered_map>

#include "common/log.h"
#include "runtime/checksum.h"
#include "runtime/block_cache_internal.h"

namespace tiercache {

void BlockCache::WakeDramStagingLocked() {
  // Nothing to stage without slow-homed blocks: the hot path of a cache
  // homed in pinned DRAM never wakes the staging thread.
  if (!dram_staging_on_ || slow_homed_blocks_ == 0) return;
  ++stage_epoch_;
  if (stage_waiting_) stage_cv_.notify_one();
}

BlockCache::Block* BlockCache::PlanDramStageLocked(const std::vector<BlockId>& tried,
                                                   Extent* extent, uint64_t* use) {
  if (predictor_ == nullptr) return nullptr;
  // No deeper than the last access's reuse distance: a predictor need not
  // know more of the pattern than it has seen once.
  const size_t lookahead = static_cast<size_t>(
      std::min<uint64_t>(static_cast<uint64_t>(config_.dram_prefetch_lookahead), stage_order_cap_));
  if (lookahead == 0) return nullptr;
  // The first blocks are the GPU prefetch's: staging them too would read
  // them from home twice.
  const size_t skip = lookahead_;
  const std::vector<BlockId> order = predictor_->PredictNext(lookahead);
  // Next uses as the order gives them: the predictor's distance estimate
  // may be unknown for a block its order lists, and ranking such a copy
  // "farthest" would let two blocks evict each other's copies in turn.
  std::unordered_map<BlockId, uint64_t> order_uses;
  for (size_t i = 0; i < order.size() && i < lookahead; ++i) {
    Block* b = LookupLocked(order[i]);
    if (b == nullptr) break;  // the order past it is unknown
    order_uses.emplace(b->id, clock_ + i + 1);  // the first use wins
  }
  for (size_t i = skip; i < order.size() && i < lookahead; ++i) {
    Block* b = LookupLocked(order[i]);
    if (b == nullptr) return nullptr;
    if (b->gpu != Block::Gpu::kAbsent || b->dram_valid || b->dram_staging || b->mirroring ||
        b->home == dram_ ||
        order_uses[b->id] != clock_ + i + 1 ||
        std::find(tried.begin(), tried.end(), b->id) != tried.end()) {
      continue;
    }
    const AttachedTier* home = FindTierLocked(b->home);
    if (home == nullptr || home->direct) continue;  // uploads DMA straight from it
    *use = clock_ + i + 1;
    Result<Extent> allocated = AllocateDramLocked(b->home_extent.length, *use, &order_uses);
    // Blocks further on are used later still: no copy they may evict.
    if (!allocated.ok()) return nullptr;
    *extent = *allocated;
    return b;
  }
  return nullptr;
}

Status BlockCache::ReadHomeIntoDram(const Block* b, const Extent& extent,
                                    const std::vector<uint32_t>& verify,
                                    std::vector<uint32_t>* fill) {
  auto* mapped = static_cast<unsigned char*>(dram_->HostAddress(extent));
  const uint64_t chunk = config_.chunk_bytes;
  std::vector<unsigned char> bounce;  // only for a DRAM tier without host addresses
  // The copy is the block as its home stores it: an encoded block's
  // encoding (home_extent.length bytes), which uploads decode.
  const uint64_t stored = b->home_extent.length;
  if (mapped == nullptr) bounce.resize(std::min(chunk, stored));
  fill->clear();
  const HostLocation home{b->home, b->home_extent};
  uint64_t index = 0;
  for (uint64_t offset = 0; offset < stored; offset += chunk, ++index) {
    const uint64_t n = std::min(chunk, stored - offset);
    unsigned char* dst = mapped != nullptr ? mapped + offset : bounce.data();
    TC_RETURN_IF_ERROR(transfer_->ReadChunk(home, offset, dst, n, &verify, index));
    if (config_.verify_checksums) fill->push_back(ChecksumBytes(dst, n));
    if (mapped == nullptr) TC_RETURN_IF_ERROR(dram_->Write(extent, offset, dst, n));
  }
  return Status::Ok();
}

void BlockCache::DramStageLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    stage_waiting_ = true;
    stage_busy_ = false;
    stage_done_cv_.notify_all();
    stage_cv_.wait(lock, [this] { return stage_stopping_ || stage_epoch_ != stage_seen_; });
    stage_waiting_ = false;
    if (stage_stopping_) break;
    stage_busy_ = true;
    stage_seen_ = stage_epoch_;
    // One block at a time, re-planned after each: the engine moves on
    // meanwhile, and so does what is worth staging. Each block at most once
    // a round: one whose read failed is tried again at a later access, not
    // in a loop, and the round ends.
    std::vector<BlockId> tried;
    while (!stage_stopping_) {
      Extent extent;
      uint64_t use = 0;
      Block* b = PlanDramStageLocked(tried, &extent, &use);
      if (b == nullptr) break;
      tried.push_back(b->id);
      b->dram_staging = true;
      const std::vector<uint32_t> verify =
          config_.verify_checksums ? b->checksums : std::vector<uint32_t>{};
      const int home_slot = FindTierLocked(b->home)->stats_slot;
      const int dram_slot = FindTierLocked(dram_)->stats_slot;
      lock.unlock();
      stats_.TransferBegin(home_slot, MonotonicNanoseconds());
      stats_.TransferBegin(dram_slot, MonotonicNanoseconds());
      std::vector<uint32_t> filled;
      const Status status = ReadHomeIntoDram(b, extent, verify, &filled);
      const uint64_t now = MonotonicNanoseconds();
      stats_.TransferEnd(home_slot, now);
      stats_.TransferEnd(dram_slot, now);
      if (status.ok()) {
        stats_.BytesOut(home_slot, b->home_extent.length);
        stats_.BytesIn(dram_slot, b->home_extent.length);
      } else {
        // No copy, no error for the engine: its acquire reads from home.
        stats_.Error(home_slot);
        TC_LOG_WARN("block %s: staging into DRAM failed: %s", b->name.c_str(),
                    status.ToString().c_str());
      }
      lock.lock();
      b->dram_staging = false;
      // Published only now, read and verified; a demotion that made a copy
      // meanwhile, or an Unregister, makes this one moot.
      if (status.ok() && b->alive && !b->dram_valid) {
        if (b->checksums.empty() && !filled.empty()) b->checksums = std::move(filled);
        b->dram_valid = true;
        b->dram_extent = extent;
        b->dram_job.reset();
        b->dram_staged_use = use;
        dram_policy_->OnTick(clock_);
        dram_policy_->OnInsert(b->id, b->home_extent.length);
        dram_policy_->OnPrediction(b->id, use);
      } else {
        (void)dram_->Free(extent);
      }
      stage_done_cv_.notify_all();
    }
  }
  stage_busy_ = false;
  stage_waiting_ = false;
  stage_done_cv_.notify_all();
}

}  // namespace tiercache
