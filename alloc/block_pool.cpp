// BlockPool: free sets and best fit, taking (also behind another stream's
// fence), fences and settling, coalescing, the snapshot. Segments (growth
// and release) are in block_pool_segments.cpp.
#include "alloc/block_pool.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "common/check.h"
#include "common/units.h"

namespace tiercache {
namespace alloc_internal {
namespace {

const char* StateName(BlockState state) {
  switch (state) {
    case BlockState::kAllocated: return "allocated";
    case BlockState::kCached: return "cached";
    case BlockState::kFree: return "free";
  }
  return "?";
}

std::string Hex(uintptr_t value) {
  char text[24];
  std::snprintf(text, sizeof(text), "\"0x%" PRIxPTR "\"", value);
  return text;
}

}  // namespace

void PointerMap::Insert(Block* block) {
  Shard& shard = ShardFor(block->address);
  std::lock_guard<SpinLock> lock(shard.mutex);
  shard.blocks[block->address] = block;
}

void PointerMap::Erase(uintptr_t address) {
  Shard& shard = ShardFor(address);
  std::lock_guard<SpinLock> lock(shard.mutex);
  shard.blocks.erase(address);
}

BlockPool::BlockPool(Device& device, PointerMap& map, PoolOptions options, uint64_t budget_bytes)
    : device_(device), map_(map), options_(options), budget_bytes_(budget_bytes) {}

BlockPool::~BlockPool() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [stream, fences] : fences_) {
    for (Fence& fence : fences.pending) {
      (void)device_.EventSynchronize(fence.event);
      (void)device_.DestroyEvent(fence.event);
    }
  }
  for (Event event : spare_events_) (void)device_.DestroyEvent(event);
  for (auto& [base, segment] : segments_) {
    for (Block* block = segment->first; block != nullptr;) {
      Block* next = block->next;
      map_.Erase(block->address);
      delete block;
      block = next;
    }
    if (!segment->arena) (void)device_.FreeMemory(reinterpret_cast<void*>(base));
  }
  if (arena_base_ != 0) (void)device_.FreeAddressRange(reinterpret_cast<void*>(arena_base_));
}

// ---- free sets -----------------------------------------------------------------

BlockPool::FreeSet& BlockPool::SetOf(Block* block) {
  bool small = block->segment->small;
  if (block->settled) return settled_.of(small);
  return owned_[block->stream.load(std::memory_order_relaxed)].of(small);
}

void BlockPool::InsertFree(Block* block) {
  SetOf(block).insert(block);
  counters_.pool_free_bytes += block->size;
}

void BlockPool::EraseFree(Block* block) {
  size_t erased = SetOf(block).erase(block);
  TC_CHECK(erased == 1, "free block missing from its free set");
  counters_.pool_free_bytes -= block->size;
}

// The smallest free block of at least `rounded` bytes that `stream` may use
// now: its own (whatever their fence) or settled ones. Taken out of its set.
Block* BlockPool::BestFit(uint64_t rounded, bool small, Stream stream) {
  Block probe;
  probe.size = rounded;
  probe.address = 0;
  FreeSet& settled = settled_.of(small);
  auto shared = settled.lower_bound(&probe);
  FreeSet* own_set = nullptr;
  FreeSet::iterator own;
  if (auto it = owned_.find(stream); it != owned_.end()) {
    own_set = &it->second.of(small);
    own = own_set->lower_bound(&probe);
    if (own == own_set->end()) own_set = nullptr;
  }
  Block* block;
  if (own_set != nullptr && (shared == settled.end() || BySize()(*own, *shared))) {
    block = *own;
    own_set->erase(own);
  } else if (shared != settled.end()) {
    block = *shared;
    settled.erase(shared);
    if (block->stream.load(std::memory_order_relaxed) != stream) ++counters_.cross_stream_reuses;
  } else {
    return nullptr;
  }
  counters_.pool_free_bytes -= block->size;
  return block;
}

// `block` is out of every set. Splits off the tail beyond `rounded` (it
// keeps the block's owner and fence) and hands the head to `stream`.
Block* BlockPool::Carve(Block* block, uint64_t rounded, Stream stream) {
  if (block->size - rounded >= kMinBlock) {
    auto* rest = new Block();
    rest->address = block->address + rounded;
    rest->size = block->size - rounded;
    rest->segment = block->segment;
    rest->prev = block;
    rest->next = block->next;
    if (block->next != nullptr) block->next->prev = rest;
    block->next = rest;
    if (block->segment->last == block) block->segment->last = rest;
    rest->settled = block->settled;
    rest->fence = block->fence;
    rest->stream.store(block->stream.load(std::memory_order_relaxed), std::memory_order_relaxed);
    rest->state.store(BlockState::kFree, std::memory_order_relaxed);
    block->size = rounded;
    map_.Insert(rest);
    InsertFree(rest);
  }
  block->settled = true;
  block->fence = 0;
  block->stream.store(stream, std::memory_order_relaxed);
  block->state.store(BlockState::kAllocated, std::memory_order_release);
  return block;
}

Block* BlockPool::Take(uint64_t rounded, bool small, Stream stream, bool grow,
                       Status* device_status) {
  std::lock_guard<std::mutex> lock(mutex_);
  Block* block = BestFit(rounded, small, stream);
  if (block == nullptr && PollLocked() > 0) block = BestFit(rounded, small, stream);
  if (block == nullptr && grow) block = Grow(rounded, small, stream, device_status);
  if (block == nullptr) return nullptr;
  return Carve(block, rounded, stream);
}

Block* BlockPool::TakeBehindFence(uint64_t rounded, bool small, Stream stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  Block* block = BestFit(rounded, small, stream);
  if (block == nullptr && PollLocked() > 0) block = BestFit(rounded, small, stream);
  if (block != nullptr) return Carve(block, rounded, stream);
  // The smallest fit among other streams' unsettled blocks, whose fence is
  // still pending (a block whose fence could not be recorded has none and
  // stays with its stream).
  Block probe;
  probe.size = rounded;
  probe.address = 0;
  Block* best = nullptr;
  const Fence* best_fence = nullptr;
  for (auto& [owner, sets] : owned_) {
    if (owner == stream) continue;
    FreeSet& set = sets.of(small);
    auto it = set.lower_bound(&probe);
    if (it == set.end() || (best != nullptr && !BySize()(*it, best))) continue;
    auto fences = fences_.find(owner);
    if (fences == fences_.end()) continue;
    for (const Fence& fence : fences->second.pending) {
      if (fence.id >= (*it)->fence) {
        best = *it;
        best_fence = &fence;
        break;
      }
    }
  }
  if (best == nullptr) return nullptr;
  // The wait captures the fence's record now, so the event may be reused
  // once it completes.
  if (!device_.StreamWaitEvent(stream, best_fence->event).ok()) return nullptr;
  EraseFree(best);
  ++counters_.cross_stream_reuses;
  ++counters_.dependent_reuses;
  return Carve(best, rounded, stream);
}

// ---- fences ----------------------------------------------------------------------

Event BlockPool::AcquireEvent() {
  if (!spare_events_.empty()) {
    Event event = spare_events_.back();
    spare_events_.pop_back();
    return event;
  }
  Result<Event> created = device_.CreateEvent();
  return created.ok() ? *created : nullptr;
}

void BlockPool::Return(Stream stream, const std::vector<Block*>& blocks) {
  if (blocks.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  // A block's last use precedes its Free, so the first fence recorded on its
  // stream after the free covers it. Blocks that waited in a stream cache
  // often have one already, completed: they settle now instead of waiting
  // for a fence recorded now, whose completion the next poll may or may not
  // see (and which coalescing would spread over their settled neighbours).
  StreamFences& fences = fences_[stream];
  PollStreamLocked(stream, fences);
  bool live = device_.IsStreamLive(stream);
  uint64_t fence_id = 0;  // the fence recorded now, if a block needs one
  for (Block* block : blocks) {
    uint64_t freed_at = block->freed_at.load(std::memory_order_relaxed);
    uint64_t cover = 0;
    if (freed_at != 0 && fences.completed >= freed_at) {
      cover = UINT64_MAX;  // settled
    } else if (freed_at != 0) {
      for (const Fence& fence : fences.pending) {
        if (fence.id >= freed_at) {
          cover = fence.id;
          break;
        }
      }
    }
    if (cover == 0) {
      if (fence_id == 0) fence_id = next_fence_.fetch_add(1, std::memory_order_seq_cst);
      cover = fence_id;
    }
    block->settled = cover == UINT64_MAX;
    block->fence = block->settled ? 0 : cover;
    block->stream.store(stream, std::memory_order_relaxed);
    block->state.store(BlockState::kFree, std::memory_order_release);
    Coalesce(block);  // neighbours not yet returned are still kCached: untouched
  }
  if (fence_id == 0) return;
  // A destroyed stream was drained when it was destroyed, and recording on
  // it is undefined on a real GPU (the driver faults): settle at once.
  if (!live) {
    Settle(stream, fence_id);
    return;
  }
  Event event = AcquireEvent();
  Status recorded = event != nullptr ? device_.RecordEvent(event, stream)
                                     : Status::Unavailable("no event for the fence");
  if (recorded.ok()) {
    fences.pending.push_back(Fence{fence_id, event});
    ++counters_.pending_fences;
    return;
  }
  if (event != nullptr) spare_events_.push_back(event);
  // No fence could be recorded: wait for the stream itself (rare: a device error).
  if (device_.StreamSynchronize(stream).ok()) Settle(stream, fence_id);
  // Else the blocks stay owned by `stream`: only it may reuse them.
}

size_t BlockPool::Poll() {
  std::lock_guard<std::mutex> lock(mutex_);
  return PollLocked();
}

size_t BlockPool::PollLocked() {
  size_t completed = 0;
  for (auto& [stream, fences] : fences_) completed += PollStreamLocked(stream, fences);
  return completed;
}

size_t BlockPool::PollStreamLocked(Stream stream, StreamFences& fences) {
  size_t completed = 0;
  while (!fences.pending.empty()) {
    Fence fence = fences.pending.front();
    Result<bool> done = device_.EventQuery(fence.event);
    if (!done.ok() || !*done) break;
    fences.pending.pop_front();
    fences.completed = fence.id;
    --counters_.pending_fences;
    spare_events_.push_back(fence.event);
    Settle(stream, fence.id);
    ++completed;
  }
  return completed;
}

void BlockPool::WaitForFences() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [stream, fences] : fences_) {
    while (!fences.pending.empty()) {
      Fence fence = fences.pending.front();
      (void)device_.EventSynchronize(fence.event);
      fences.pending.pop_front();
      fences.completed = fence.id;
      --counters_.pending_fences;
      spare_events_.push_back(fence.event);
      Settle(stream, fence.id);
    }
  }
}

// Every block `stream` freed behind a fence up to `fence_id` becomes settled.
void BlockPool::Settle(Stream stream, uint64_t fence_id) {
  auto own = owned_.find(stream);
  if (own == owned_.end()) return;
  std::vector<Block*> done;
  for (FreeSet* set : {&own->second.small, &own->second.large}) {
    for (Block* block : *set) {
      if (block->fence <= fence_id) done.push_back(block);
    }
  }
  for (Block* block : done) {
    EraseFree(block);
    block->settled = true;
    block->fence = 0;
    Coalesce(block);
  }
}

// Whether free `neighbour` may merge into `block`'s run: settled memory joins
// anything; a stream's own unsettled blocks join each other (the merged
// block waits for the later fence). Settled blocks never absorb another
// stream's unsettled ones, which would let other streams in early.
bool BlockPool::Mergeable(const Block* block, const Block* neighbour) const {
  if (neighbour == nullptr ||
      neighbour->state.load(std::memory_order_relaxed) != BlockState::kFree) {
    return false;
  }
  if (neighbour->settled) return true;
  return !block->settled && neighbour->stream.load(std::memory_order_relaxed) ==
                                block->stream.load(std::memory_order_relaxed);
}

// `low` absorbs its next neighbour `high`; the result keeps `owner`'s
// ownership (the unsettled one of the two, if any).
void BlockPool::Absorb(Block* low, Block* high, const Block* owner) {
  bool settled = owner->settled;
  uint64_t fence = std::max(low->settled ? 0 : low->fence, high->settled ? 0 : high->fence);
  Stream stream = owner->stream.load(std::memory_order_relaxed);
  low->size += high->size;
  low->next = high->next;
  if (low->segment->last == high) low->segment->last = low;
  if (high->next != nullptr) high->next->prev = low;
  low->settled = settled;
  low->fence = settled ? 0 : fence;
  low->stream.store(stream, std::memory_order_relaxed);
  map_.Erase(high->address);
  delete high;
}

// `block` is free and in no set; merges it with the neighbours Mergeable()
// allows and files the result.
Block* BlockPool::Coalesce(Block* block) {
  if (Mergeable(block, block->prev)) {
    Block* prev = block->prev;
    EraseFree(prev);
    Absorb(prev, block, block);
    block = prev;
  }
  if (Mergeable(block, block->next)) {
    EraseFree(block->next);
    Absorb(block, block->next, block);
  }
  InsertFree(block);
  return block;
}

// ---- accessors ---------------------------------------------------------------------

void BlockPool::set_budget(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  budget_bytes_ = bytes;
}

uint64_t BlockPool::budget() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return budget_bytes_;
}

PoolCounters BlockPool::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

DeviceAllocator::Range BlockPool::CheckRange(uintptr_t address, uint64_t bytes) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = segments_.upper_bound(address);
  if (it == segments_.begin()) return DeviceAllocator::Range::kForeign;
  const Segment& segment = *std::prev(it)->second;
  if (address - segment.base >= segment.size) return DeviceAllocator::Range::kForeign;
  for (const Block* block = segment.first; block != nullptr; block = block->next) {
    if (address - block->address >= block->size) continue;
    if (block->state.load(std::memory_order_acquire) != BlockState::kAllocated) {
      return DeviceAllocator::Range::kNotLive;
    }
    const uint64_t requested = block->requested.load(std::memory_order_relaxed);
    const uint64_t offset = address - block->address;
    if (offset > requested || bytes > requested - offset) return DeviceAllocator::Range::kNotLive;
    return offset == 0 ? DeviceAllocator::Range::kLiveStart : DeviceAllocator::Range::kLive;
  }
  return DeviceAllocator::Range::kNotLive;
}

std::string BlockPool::SegmentsJson() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out = "[";
  bool first_segment = true;
  for (const auto& [base, segment] : segments_) {
    out += first_segment ? "" : ",";
    first_segment = false;
    out += "{\"address\":" + Hex(base) + ",\"bytes\":" + std::to_string(segment->size) +
           ",\"small\":" + (segment->small ? "true" : "false") + ",\"blocks\":[";
    for (const Block* block = segment->first; block != nullptr; block = block->next) {
      BlockState state = block->state.load(std::memory_order_acquire);
      out += block == segment->first ? "" : ",";
      out += "{\"address\":" + Hex(block->address) + ",\"bytes\":" + std::to_string(block->size) +
             ",\"requested\":" +
             std::to_string(state == BlockState::kAllocated
                                ? block->requested.load(std::memory_order_relaxed)
                                : 0) +
             ",\"state\":\"" + StateName(state) + "\",\"stream\":" +
             Hex(reinterpret_cast<uintptr_t>(block->stream.load(std::memory_order_relaxed))) +
             (state == BlockState::kFree ? std::string(",\"settled\":") +
                                               (block->settled ? "true" : "false")
                                         : std::string()) +
             "}";
    }
    out += "]}";
  }
  out += "]";
  return out;
}

}  // namespace alloc_internal
}  // namespace tiercache
