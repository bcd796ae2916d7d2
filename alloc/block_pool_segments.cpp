// BlockPool: segments. Growing the pool (a separate segment, or more of the
// virtual-memory arena) within the budget, and releasing settled free
// segments and the arena's free tail.
#include <algorithm>

#include "alloc/block_pool.h"
#include "common/check.h"
#include "common/units.h"

namespace tiercache {
namespace alloc_internal {

// A new segment holding at least `rounded` bytes, as one free block counted
// in pool_free_bytes but in no set. Segment sizes shrink to the request when
// the preferred size does not fit the budget or the device.
Block* BlockPool::Grow(uint64_t rounded, bool small, Stream stream, Status* device_status) {
  if (!small && options_.virtual_memory && !arena_tried_) {
    arena_tried_ = true;
    granularity_ = device_.MappingGranularity();
    if (granularity_ != 0 && IsPowerOfTwo(granularity_) && granularity_ % kMinBlock == 0) {
      // Room for all of the device's memory: the budget may rise later.
      arena_capacity_ = AlignUp(device_.info().total_memory, granularity_);
      Result<void*> range = device_.ReserveAddressRange(arena_capacity_);
      if (range.ok()) arena_base_ = reinterpret_cast<uintptr_t>(*range);
    }
  }
  if (!small && arena_base_ != 0) return GrowArena(rounded, stream, device_status);
  // Large segments grow with the pool (an eighth of what is reserved), so a
  // big working set lives in few segments and free space coalesces across
  // more of it; a request bigger than half a segment gets its own.
  uint64_t large_segment = std::max(options_.large_segment_bytes,
                                    AlignUp(counters_.reserved_bytes / 8, options_.large_rounding));
  uint64_t preferred = small ? options_.small_segment_bytes
                             : (rounded <= large_segment / 2 ? large_segment
                                                             : AlignUp(rounded, options_.large_rounding));
  uint64_t tight = small ? AlignUp(rounded, kMinBlock) : AlignUp(rounded, options_.large_rounding);
  if (tight > preferred) tight = preferred;
  // Near the budget, the biggest segment that still fits beats a tight one:
  // it leaves room for the next requests without another segment.
  uint64_t room = budget_bytes_ > counters_.reserved_bytes ? budget_bytes_ - counters_.reserved_bytes : 0;
  uint64_t fitting = std::min(preferred, room / options_.large_rounding * options_.large_rounding);
  void* memory = nullptr;
  uint64_t size = 0;
  for (uint64_t candidate : {preferred, fitting, tight, AlignUp(rounded, kMinBlock)}) {
    if (candidate < rounded || counters_.reserved_bytes + candidate > budget_bytes_) {
      *device_status = Status::OutOfMemory("budget of " + FormatBytes(budget_bytes_) + " with " +
                                           FormatBytes(counters_.reserved_bytes) + " reserved");
      continue;
    }
    Result<void*> got = device_.AllocateMemory(candidate);
    if (got.ok()) {
      memory = *got;
      size = candidate;
      break;
    }
    *device_status = got.status();
  }
  if (memory == nullptr) return nullptr;
  auto segment = std::make_unique<Segment>();
  segment->base = reinterpret_cast<uintptr_t>(memory);
  segment->size = size;
  segment->small = small;
  auto* block = new Block();
  block->address = segment->base;
  block->size = size;
  block->segment = segment.get();
  segment->first = block;
  segment->last = block;
  map_.Insert(block);
  segments_[segment->base] = std::move(segment);
  counters_.reserved_bytes += size;
  if (counters_.reserved_bytes > counters_.peak_reserved_bytes) {
    counters_.peak_reserved_bytes = counters_.reserved_bytes;
  }
  ++counters_.segments;
  ++counters_.segments_allocated;
  return block;
}

// Maps what `rounded` lacks beyond the arena's free tail (when `stream`
// may use that tail) or, failing that, a fresh run at the arena's end.
// Returns the block to carve, out of every set and uncounted, as Grow does.
Block* BlockPool::GrowArena(uint64_t rounded, Stream stream, Status* device_status) {
  Block* tail = arena_ != nullptr ? arena_->last : nullptr;
  bool extend = tail != nullptr && tail->state.load(std::memory_order_relaxed) == BlockState::kFree &&
                (tail->settled || tail->stream.load(std::memory_order_relaxed) == stream);
  uint64_t mapped = arena_ != nullptr ? arena_->size : 0;
  uint64_t need = AlignUp(extend ? rounded - std::min(rounded, tail->size) : rounded, granularity_);
  if (counters_.reserved_bytes + need > budget_bytes_) {
    *device_status = Status::OutOfMemory("budget of " + FormatBytes(budget_bytes_) + " with " +
                                         FormatBytes(counters_.reserved_bytes) + " reserved");
    return nullptr;
  }
  if (mapped + need > arena_capacity_) {
    *device_status = Status::OutOfMemory("the address range of " + FormatBytes(arena_capacity_) + " is full");
    return nullptr;
  }
  Status status = device_.MapMemory(reinterpret_cast<void*>(arena_base_ + mapped), need);
  if (!status.ok()) {
    *device_status = status;
    return nullptr;
  }
  counters_.reserved_bytes += need;
  counters_.peak_reserved_bytes = std::max(counters_.peak_reserved_bytes, counters_.reserved_bytes);
  if (arena_ == nullptr) {
    auto segment = std::make_unique<Segment>();
    segment->base = arena_base_;
    segment->arena = true;
    arena_ = segment.get();
    segments_[arena_base_] = std::move(segment);
    ++counters_.segments;
    ++counters_.segments_allocated;
  }
  arena_->size += need;
  if (extend) {
    EraseFree(tail);
    tail->size += need;
    return tail;
  }
  auto* block = new Block();
  block->address = arena_base_ + mapped;
  block->size = need;
  block->segment = arena_;
  block->prev = tail;
  if (tail != nullptr) tail->next = block;
  if (arena_->first == nullptr) arena_->first = block;
  arena_->last = block;
  map_.Insert(block);
  return block;
}

// Unmaps up to `bytes` (whole granules) of the arena's settled free tail;
// returns the bytes unmapped.
uint64_t BlockPool::ShrinkArena(uint64_t bytes) {
  Block* tail = arena_->last;
  if (tail->state.load(std::memory_order_relaxed) != BlockState::kFree || !tail->settled) return 0;
  uintptr_t end = arena_->base + arena_->size;
  uintptr_t cut = std::max(AlignUp(tail->address, granularity_),
                           end - std::min<uint64_t>(bytes / granularity_ * granularity_, end));
  if (cut >= end) return 0;
  if (!device_.UnmapMemory(reinterpret_cast<void*>(cut), end - cut).ok()) return 0;
  uint64_t released = end - cut;
  EraseFree(tail);
  counters_.reserved_bytes -= released;
  arena_->size -= released;
  if (cut > tail->address) {
    tail->size -= released;
    InsertFree(tail);
  } else {
    arena_->last = tail->prev;
    if (tail->prev != nullptr) tail->prev->next = nullptr;
    if (arena_->first == tail) arena_->first = nullptr;
    map_.Erase(tail->address);
    delete tail;
  }
  if (arena_->first == nullptr) {
    segments_.erase(arena_->base);
    arena_ = nullptr;
    --counters_.segments;
    ++counters_.segments_released;
  }
  return released;
}

// ---- release ---------------------------------------------------------------------

uint64_t BlockPool::ReleaseFree(uint64_t keep_unused_bytes, uint64_t allocated_bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Segment*> candidates;
  uint64_t released = 0;
  if (arena_ != nullptr) {
    uint64_t unused = counters_.reserved_bytes - std::min(allocated_bytes, counters_.reserved_bytes);
    if (unused > keep_unused_bytes) released += ShrinkArena(unused - keep_unused_bytes);
  }
  for (auto& [base, segment] : segments_) {
    if (segment->arena) continue;
    Block* only = segment->first;
    if (only->next == nullptr && only->settled &&
        only->state.load(std::memory_order_relaxed) == BlockState::kFree) {
      candidates.push_back(segment.get());
    }
  }
  for (Segment* segment : candidates) {
    uint64_t unused = counters_.reserved_bytes - std::min(allocated_bytes, counters_.reserved_bytes);
    if (unused <= keep_unused_bytes) break;
    released += segment->size;
    ReleaseSegment(segment);
  }
  return released;
}

void BlockPool::ReleaseSegment(Segment* segment) {
  Block* block = segment->first;
  EraseFree(block);
  map_.Erase(block->address);
  delete block;
  counters_.reserved_bytes -= segment->size;
  --counters_.segments;
  ++counters_.segments_released;
  uintptr_t base = segment->base;
  segments_.erase(base);
  (void)device_.FreeMemory(reinterpret_cast<void*>(base));
}

}  // namespace alloc_internal
}  // namespace tiercache
